package etcdkv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
)

// An event line of the store's largest size (2 MiB of JSON, above etcd's 1.5 MiB request limit)
// is stored compressed and reads back whole, by Get, by a cursor and by a post; a value that does
// not compress below the limit is refused, not stored; a damaged stored value is the
// transaction's error, not a wrong value.
func TestLargeValuesAreStoredCompressed(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	db := open(t, etcdkv.Options{Client: cli, Prefix: "/values/"})
	var line bytes.Buffer
	line.WriteString(`{"event_id":"e","incident":{"rawJSON":"`)
	for i := 0; line.Len() < 2<<20-64; i++ {
		fmt.Fprintf(&line, `{\"id\":\"issue-%07d\",\"status\":\"OPEN\",\"severity\":\"HIGH\"},`, i)
	}
	line.WriteString(`"}}`)
	big := line.Bytes()

	err := db.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("outbox"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), big)
	})
	if err != nil {
		t.Fatalf("put a 2 MiB event line: %v", err)
	}
	if err := db.Post([]byte("outbox"), big); err != nil {
		t.Fatalf("post a 2 MiB value: %v", err)
	}
	err = db.View(func(tx kv.Tx) error {
		b := tx.Bucket([]byte("outbox"))
		if !bytes.Equal(b.Get([]byte("k")), big) {
			return errors.New("Get returned another value")
		}
		n := 0
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if !bytes.Equal(v, big) {
				return fmt.Errorf("cursor at %q returned another value", k)
			}
			n++
		}
		if n != 2 {
			return fmt.Errorf("%d keys, want 2", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The stored form is compressed: well under the limit.
	resp, err := cli.Get(context.Background(), "/values/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if len(kv.Value) > 1<<20 {
			t.Fatalf("%q is stored as %d bytes", kv.Key, len(kv.Value))
		}
	}

	// Incompressible: refused at Put with ErrTooLarge, and the transaction writes nothing.
	noise := make([]byte, 2<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	err = db.Update(func(tx kv.Tx) error {
		return tx.Bucket([]byte("outbox")).Put([]byte("noise"), noise)
	})
	if !errors.Is(err, kv.ErrTooLarge) {
		t.Fatalf("put of 2 MiB that does not compress: %v, want ErrTooLarge", err)
	}

	// Damage a stored value behind the engine's back.
	for _, kv := range resp.Kvs {
		if strings.HasSuffix(string(kv.Key), "k") {
			if _, err := cli.Put(context.Background(), string(kv.Key), "\x07garbage"); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = db.View(func(tx kv.Tx) error {
		if v := tx.Bucket([]byte("outbox")).Get([]byte("k")); v != nil {
			return fmt.Errorf("damaged value read as %q", v)
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "unknown header byte") {
		t.Fatalf("View over a damaged value: %v, want an error naming it", err)
	}
}
