package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// commit makes ops durable and visible, all or nothing (see the package doc). The caller holds
// updateMu.
func (db *DB) commit(ops []op) error {
	ctx, cancel := context.WithTimeout(context.Background(), db.timeout)
	defer cancel()
	if _, err := db.currentFence(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if len(ops) == 0 {
		return nil
	}
	var seq uint64
	var rev int64
	var err error
	if batches := db.batches(ops); len(batches) <= 1 {
		_, err = db.txn(ctx, ops, db.noRecord("")...)
	} else {
		seq, rev, err = db.writeRecord(ctx, ops)
	}
	if errors.Is(err, errUnapplied) && !db.skipRecover {
		// A deposed leader's record, and the new leader did not call Recover: apply it now. The
		// transaction read a state without it, so it must run again rather than commit. (A DB
		// opened with SkipRecover leaves it to the leader.)
		if rerr := db.recover(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("commit %d operations: %w", len(ops), err)
	}
	if seq == 0 {
		return nil
	}
	// From here on the commit is made: an error leaves the rest to Recover, not to the caller.
	p := &pendingRecord{seq: seq, rev: rev}
	db.setPending(p)
	if db.hooks.afterRecord != nil {
		if err := db.hooks.afterRecord(); err != nil {
			return err
		}
	}
	if err := db.applyRecord(ctx, seq, ops); err != nil {
		db.log.Warn("a commit is durable but not yet applied; the next transaction finishes it",
			"record", db.recordPrefix(seq), "err", err)
		db.mu.Lock()
		p.failed = true
		db.mu.Unlock()
		return nil
	}
	db.setPending(nil)
	return nil
}

// errUnapplied means a commit was refused because a write-ahead record of an earlier commit is
// not applied yet.
var errUnapplied = errors.New("an earlier commit's write-ahead record is not applied yet; it is applied now, run the transaction again")

// noRecord returns the compares that hold when no write-ahead record exists other than the one
// at prefix record ("": none). Every commit carries them, so that a commit never lands on a state
// in which an earlier commit is missing (a deposed leader's, not yet recovered).
func (db *DB) noRecord(record string) []clientv3.Cmp {
	none := func(start, end string) clientv3.Cmp {
		return clientv3.Compare(clientv3.CreateRevision(start), "=", 0).WithRange(end)
	}
	end := prefixEnd(db.walPrefix)
	if record == "" {
		return []clientv3.Cmp{none(db.walPrefix, end)}
	}
	return []clientv3.Cmp{none(db.walPrefix, record), none(prefixEnd(record), end)}
}

// txn runs ops as one fenced etcd transaction that also requires guards, and returns its revision.
// A failed compare is kv.ErrFenced when the fence no longer holds, else errUnapplied.
func (db *DB) txn(ctx context.Context, ops []op, guards ...clientv3.Cmp) (int64, error) {
	f, err := db.currentFence()
	if err != nil {
		return 0, err
	}
	cmps := guards
	var orElse []clientv3.Op
	if f.key != "" {
		cmps = append([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev)}, guards...)
		orElse = append(orElse, clientv3.OpGet(f.key)) // tells which compare failed
	}
	cops := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		cops[i] = o.clientOp()
	}
	resp, err := db.cli.Txn(ctx).If(cmps...).Then(cops...).Else(orElse...).Commit()
	if err != nil {
		return 0, err
	}
	db.seen(resp.Header.Revision)
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	if f.key != "" {
		var kvs []*mvccpb.KeyValue
		if len(resp.Responses) > 0 {
			kvs = resp.Responses[0].GetResponseRange().GetKvs()
		}
		if len(kvs) == 0 || kvs[0].CreateRevision != f.rev {
			return 0, kv.ErrFenced
		}
	}
	return 0, errUnapplied
}

// batches cuts ops into groups that each fit one etcd transaction.
func (db *DB) batches(ops []op) [][]op {
	var out [][]op
	start, bytes := 0, 0
	for i, o := range ops {
		if i > start && (i-start >= db.maxOps || bytes+o.size() > db.maxBytes) {
			out = append(out, ops[start:i])
			start, bytes = i, 0
		}
		bytes += o.size()
	}
	if start < len(ops) || len(out) == 0 {
		out = append(out, ops[start:])
	}
	return out
}

// writeRecord writes ops as a write-ahead record, its head last, and returns its sequence number
// and the revision of the head's transaction, the commit point. A record cut off before its head
// is deleted here when possible, else by the next Recover.
func (db *DB) writeRecord(ctx context.Context, ops []op) (seq uint64, rev int64, err error) {
	seq = max(uint64(db.maxRev.Load())+1, db.lastSeq+1)
	db.lastSeq = seq
	record := db.recordPrefix(seq)
	data := db.codec.encode(ops)
	chunk := db.maxBytes - len(record) - 2*opOverhead - fenceReserve
	var puts []op
	for i := 0; i*chunk < len(data); i++ {
		puts = append(puts, op{kind: opPut, key: chunkKey(record, i), val: data[i*chunk : min((i+1)*chunk, len(data))]})
	}
	puts = append(puts, op{kind: opPut, key: record + walHead, val: encodeHead(len(puts), len(data))})
	for _, batch := range db.batches(puts) {
		if rev, err = db.txn(ctx, batch, db.noRecord(record)...); err != nil {
			// A fresh context: ctx may be what expired.
			cctx, cancel := context.WithTimeout(context.Background(), db.timeout)
			_, cerr := db.txn(cctx, []op{{kind: opDeleteRange, key: record, end: prefixEnd(record)}})
			cancel()
			if cerr != nil {
				db.log.Debug("delete an uncommitted record", "record", record, "err", cerr)
			}
			return 0, 0, fmt.Errorf("write-ahead record %s (%d bytes): %w", record, len(data), err)
		}
	}
	return seq, rev, nil
}

// applyRecord applies the operations of record seq, several transactions at a time, then deletes
// the record.
func (db *DB) applyRecord(ctx context.Context, seq uint64, ops []op) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(db.applyLimit)
	for i, batch := range db.batches(ops) {
		if db.hooks.beforeApply != nil {
			if err := db.hooks.beforeApply(i); err != nil {
				_ = g.Wait()
				return err
			}
		}
		g.Go(func() error {
			if _, err := db.txn(gctx, batch); err != nil {
				return fmt.Errorf("apply batch %d: %w", i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	record := db.recordPrefix(seq)
	if _, err := db.txn(ctx, []op{{kind: opDeleteRange, key: record, end: prefixEnd(record)}}); err != nil {
		return fmt.Errorf("delete applied record %s: %w", record, err)
	}
	return nil
}

// Recover applies, in order, every write-ahead record a commit left unapplied (a crash, a lost
// connection, or a deposed leader between a commit point and the end of its apply), and deletes
// records that never reached their commit point. A replica must call it after it wins an election
// and before its first Update; Open calls it when the DB may write. It fails with kv.ErrFenced when
// records remain and this replica does not lead.
func (db *DB) Recover(ctx context.Context) error {
	if err := db.begin(); err != nil {
		return err
	}
	defer db.txs.Done()
	db.updateMu.Lock()
	defer db.updateMu.Unlock()
	return db.recover(ctx)
}

// recover is Recover with updateMu held.
func (db *DB) recover(ctx context.Context) error {
	resp, err := db.cli.Get(ctx, db.walPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("recover: list write-ahead records: %w", err)
	}
	db.seen(resp.Header.Revision)
	var seqs []uint64
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		seq, _, err := parseWALKey(strings.TrimPrefix(key, db.walPrefix))
		if err != nil {
			return fmt.Errorf("recover: write-ahead key %q: %w", key, err)
		}
		if len(seqs) == 0 || seqs[len(seqs)-1] != seq {
			seqs = append(seqs, seq)
		}
	}
	for _, seq := range seqs {
		if err := db.recoverRecord(ctx, seq); err != nil {
			return fmt.Errorf("recover: %w", err)
		}
		db.lastSeq = max(db.lastSeq, seq)
	}
	db.setPending(nil)
	return nil
}

// recoverRecord applies record seq if it reached its commit point, and deletes it.
func (db *DB) recoverRecord(ctx context.Context, seq uint64) error {
	record := db.recordPrefix(seq)
	resp, err := db.cli.Get(ctx, record, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read record %s: %w", record, err)
	}
	parts := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		parts[strings.TrimPrefix(string(kv.Key), record)] = kv.Value
	}
	if _, ok := parts[walHead]; !ok {
		db.log.Info("delete a write-ahead record cut off before its commit point", "record", record)
		_, err := db.txn(ctx, []op{{kind: opDeleteRange, key: record, end: prefixEnd(record)}})
		return err
	}
	data, err := assemble(record, parts)
	if err != nil {
		return err
	}
	ops, err := db.codec.decode(data)
	if err != nil {
		return fmt.Errorf("record %s: %w", record, err)
	}
	if i := slices.IndexFunc(ops, func(o op) bool { return !strings.HasPrefix(o.key, db.root) }); i >= 0 {
		return fmt.Errorf("record %s: operation %d on %q, outside the data", record, i, ops[i].key)
	}
	db.log.Info("apply a committed write-ahead record", "record", record,
		"operations", len(ops))
	return db.applyRecord(ctx, seq, ops)
}
