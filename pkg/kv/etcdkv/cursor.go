package etcdkv

import (
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// pageSize is how many keys a cursor reads from etcd at a time.
const pageSize = 256

// cursor is a kv.Cursor over one span (a bucket's keys, or its sub-bucket markers): etcd's keys
// at the transaction's revision, merged with the transaction's write set.
type cursor struct {
	tx   *tx
	span span
	cur  string // the etcd key the cursor is on; "" when on none
	page page
}

// page is the last range a cursor read from etcd: every stored key in [lo, hi) is in kvs, in
// ascending order.
type page struct {
	valid  bool
	lo, hi string
	kvs    []*mvccpb.KeyValue
}

func newCursor(t *tx, s span) *cursor { return &cursor{tx: t, span: s} }

// First implements kv.Cursor.
func (c *cursor) First() ([]byte, []byte) { return c.land(c.nextGE(c.span.start)) }

// Last implements kv.Cursor.
func (c *cursor) Last() ([]byte, []byte) { return c.land(c.prevLT(c.span.end)) }

// Seek implements kv.Cursor.
func (c *cursor) Seek(seek []byte) ([]byte, []byte) {
	return c.land(c.nextGE(c.span.start + string(seek)))
}

// Next implements kv.Cursor.
func (c *cursor) Next() ([]byte, []byte) {
	if c.cur == "" {
		return nil, nil
	}
	return c.land(c.nextGE(c.cur + "\x00"))
}

// Prev implements kv.Cursor.
func (c *cursor) Prev() ([]byte, []byte) {
	if c.cur == "" {
		return nil, nil
	}
	return c.land(c.prevLT(c.cur))
}

// Delete implements kv.Cursor. The cursor stays where it is, so Next moves to the following key.
func (c *cursor) Delete() error {
	if err := c.tx.check("cursor delete"); err != nil {
		return err
	}
	if c.cur != "" {
		c.tx.set(c.cur, nil)
	}
	return nil
}

// land moves the cursor to the etcd key k and returns the raw key and value.
func (c *cursor) land(k string, v []byte) ([]byte, []byte) {
	c.cur = k
	if k == "" {
		return nil, nil
	}
	return []byte(k[len(c.span.start):]), v
}

// hidden reports whether the write set deleted every stored key of the span (its bucket was
// deleted, and maybe created again, in this transaction).
func (c *cursor) hidden() bool { return c.tx.ws != nil && c.tx.ws.hides(c.span.start) }

// nextGE returns the first key >= x in the span and its value, as the transaction sees them.
func (c *cursor) nextGE(x string) (string, []byte) {
	ws := c.tx.ws
	for {
		stored := c.storedGE(x)
		var w string
		if ws != nil {
			if i := ws.index(x); i < len(ws.sorted) && ws.sorted[i] < c.span.end {
				w = ws.sorted[i]
			}
		}
		switch {
		case w != "" && (stored == nil || w <= string(stored.Key)):
			if v := ws.ops[w]; v != nil {
				return w, v
			}
			x = w + "\x00" // deleted in this transaction
		case stored != nil:
			return string(stored.Key), c.tx.value(string(stored.Key), stored.Value)
		default:
			return "", nil
		}
	}
}

// prevLT returns the last key < x in the span and its value, as the transaction sees them.
func (c *cursor) prevLT(x string) (string, []byte) {
	ws := c.tx.ws
	for {
		stored := c.storedLT(x)
		var w string
		if ws != nil {
			if i := ws.index(x) - 1; i >= 0 && ws.sorted[i] >= c.span.start {
				w = ws.sorted[i]
			}
		}
		switch {
		case w != "" && (stored == nil || w >= string(stored.Key)):
			if v := ws.ops[w]; v != nil {
				return w, v
			}
			x = w
		case stored != nil:
			return string(stored.Key), c.tx.value(string(stored.Key), stored.Value)
		default:
			return "", nil
		}
	}
}

// storedGE returns etcd's first key >= x in the span, reading pages forward as needed.
func (c *cursor) storedGE(x string) *mvccpb.KeyValue {
	if c.hidden() || x >= c.span.end {
		return nil
	}
	if !c.page.valid || x < c.page.lo || x > c.page.hi {
		c.fetch(x, true)
	}
	for c.page.valid {
		if i := c.search(x); i < len(c.page.kvs) {
			return c.page.kvs[i]
		}
		if c.page.hi >= c.span.end {
			return nil
		}
		c.fetch(c.page.hi, true)
	}
	return nil
}

// storedLT returns etcd's last key < x in the span, reading pages backward as needed.
func (c *cursor) storedLT(x string) *mvccpb.KeyValue {
	if c.hidden() || x <= c.span.start {
		return nil
	}
	if !c.page.valid || x < c.page.lo || x > c.page.hi {
		c.fetch(x, false)
	}
	for c.page.valid {
		if i := c.search(x); i > 0 {
			return c.page.kvs[i-1]
		}
		if c.page.lo <= c.span.start {
			return nil
		}
		c.fetch(c.page.lo, false)
	}
	return nil
}

// search returns the index of the first key >= x in the page.
func (c *cursor) search(x string) int {
	i, _ := slices.BinarySearchFunc(c.page.kvs, x, func(kv *mvccpb.KeyValue, x string) int {
		return strings.Compare(string(kv.Key), x)
	})
	return i
}

// fetch reads the page of keys starting at from (forward) or ending before it (backward).
func (c *cursor) fetch(from string, forward bool) {
	c.page = page{}
	start, end, order := from, c.span.end, clientv3.SortAscend
	if !forward {
		start, end, order = c.span.start, from, clientv3.SortDescend
	}
	if start >= end {
		c.page = page{valid: true, lo: start, hi: end}
		return
	}
	resp := c.tx.read(start, clientv3.WithRange(end), clientv3.WithLimit(pageSize),
		clientv3.WithSort(clientv3.SortByKey, order))
	if resp == nil {
		return // the transaction keeps the error; the cursor ends here
	}
	p := page{valid: true, lo: start, hi: end, kvs: resp.Kvs}
	switch {
	case len(p.kvs) == 0:
	case forward && resp.More:
		p.hi = string(p.kvs[len(p.kvs)-1].Key) + "\x00"
	case !forward:
		slices.Reverse(p.kvs)
		if resp.More {
			p.lo = string(p.kvs[0].Key)
		}
	}
	c.page = p
}
