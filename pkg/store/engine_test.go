package store

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// testEngineEnv selects the engine openTestStore opens stores on:
//   - "" or "bbolt": Open on a bbolt file, the default engine;
//   - "kv": OpenKV on a bbolt file behind posterDB, the way every engine that replicas share is
//     opened (the inbox takes pushes, the id set is checked for other writers, no bbolt features);
//   - "etcd": OpenKV on etcdkv over a real etcd server (kv/etcdtest), one per test.
//
// TestMain runs the package's tests a second time with "etcd" when the variable is unset (and
// -short is not given), so that `go test ./...` runs the store's tests on both engines.
const testEngineEnv = "WIZFETCH_TEST_STORE"

func TestMain(m *testing.M) {
	code := m.Run()
	fuzzing := false
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		fuzzing = true // a fuzz target runs once; it does not open stores on an engine
	}
	if code == 0 && os.Getenv(testEngineEnv) == "" && !testing.Short() && !fuzzing {
		fmt.Println("store tests again on etcd (" + testEngineEnv + "=etcd)")
		_ = os.Setenv(testEngineEnv, "etcd")
		code = m.Run()
	}
	os.Exit(code)
}

// etcdStore is a store on etcd and what reopens it.
type etcdStore struct {
	*etcdkv.DB
	client *clientv3.Client
	prefix string
}

// openEtcdTestStore opens a fresh store on its own embedded etcd server.
func openEtcdTestStore(t *testing.T, opts Options) *Store {
	t.Helper()
	srv := etcdtest.Start(t)
	return openEtcdAt(t, srv.Client(t), "/wizfetch/test/", opts)
}

// openEtcdAt opens the store under prefix with OpenKV on etcdkv (unfenced: the only writer).
func openEtcdAt(t *testing.T, client *clientv3.Client, prefix string, opts Options) *Store {
	t.Helper()
	db, err := etcdkv.Open(context.Background(), etcdkv.Options{Client: client, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenKV(etcdStore{DB: db, client: client, prefix: prefix}, opts)
	if err != nil {
		_ = db.Close()
		t.Fatalf("OpenKV(etcd %s): %v", prefix, err)
	}
	t.Cleanup(func() {
		checkConsistency(t, s) // a no-op when the test closed s itself
		_ = s.Close()
	})
	return s
}

// openTestStore opens a fresh, empty store with opts on the engine testEngineEnv names: every test
// that is not about what is bbolt's (files, locks, migrations, damage, page writes) gets its store
// here, so that one switch runs them on another engine.
func openTestStore(t *testing.T, opts Options) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "wizfetch.db")
	switch engine := os.Getenv(testEngineEnv); engine {
	case "", "bbolt":
		return openWith(t, path, opts)
	case "kv":
		return openPosterAt(t, path, opts)
	case "etcd":
		return openEtcdTestStore(t, opts)
	default:
		t.Fatalf("%s=%q: unknown engine (bbolt, kv, etcd)", testEngineEnv, engine)
		return nil
	}
}

// posterDB is a kv.DB with kv.Poster over a real bbolt file: what an engine that replicas share
// (etcd) offers the store, without one. Post commits at once, outside any transaction; while
// fenced is set, Update refuses as on a replica that does not lead, and Post still works; while
// failPosts is set, Post fails as with the engine out of reach.
type posterDB struct {
	*boltkv.DB
	path   string
	fenced atomic.Bool
	// fencedAtCommit makes a fenced Update run fn before it refuses the commit.
	fencedAtCommit atomic.Bool
	failPosts      atomic.Bool
	posts          atomic.Int64
}

// Update refuses with kv.ErrFenced while fenced is set: before fn runs, or, while fencedAtCommit
// is set too, after it, as etcd refuses the commit of a transaction that ran (nothing of it is
// written).
func (p *posterDB) Update(fn func(kv.Tx) error) error {
	if p.fenced.Load() && p.fencedAtCommit.Load() {
		return p.DB.Update(func(tx kv.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			return kv.ErrFenced
		})
	}
	if p.fenced.Load() {
		return kv.ErrFenced
	}
	return p.DB.Update(fn)
}

// Post appends value to bucket name under the bucket's next sequence number.
func (p *posterDB) Post(name, value []byte) error {
	if p.failPosts.Load() {
		return errors.New("post: the engine is out of reach")
	}
	p.posts.Add(1)
	return p.DB.Update(func(tx kv.Tx) error {
		b := tx.Bucket(name)
		if b == nil {
			return fmt.Errorf("post to %s: %w", name, kv.ErrBucketNotFound)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(seqKey(seq), bytes.Clone(value))
	})
}

// openPoster opens the bbolt file at path behind a posterDB.
func openPoster(t *testing.T, path string) *posterDB {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := boltkv.Open(path, &boltkv.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return &posterDB{DB: db, path: path}
}

// openPosterAt opens the store at path with OpenKV on a posterDB.
func openPosterAt(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	db := openPoster(t, path)
	s, err := OpenKV(db, opts)
	if err != nil {
		_ = db.Close()
		t.Fatalf("OpenKV(%s): %v", path, err)
	}
	t.Cleanup(func() {
		checkConsistency(t, s) // a no-op when the test closed s itself
		_ = s.Close()
	})
	return s
}
