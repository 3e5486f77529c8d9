// Package sink delivers events from the store's per-sink outboxes to where the SOC works. Each sink
// renders from the one event line the feed committed (DESIGN.md §6); the dispatcher runs one worker per
// sink, takes turns across instances while keeping each instance's order, retries transient failures
// with backoff and moves permanent failures to the dead letter.
package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// Sink is one delivery target.
type Sink interface {
	// Name is the sink's configured name (its outbox key).
	Name() string
	// Deliver sends items in order. It returns how many leading items are delivered for good (they
	// will be acknowledged) and, if not all, why the next one was not. Wrap errors that retrying
	// cannot fix with Permanent. items and their Data are only valid during the call: the dispatcher
	// reuses their memory for the next batch.
	Deliver(ctx context.Context, items []store.OutboxItem) (int, error)
	// Close releases the sink's resources (flushing files).
	Close() error
}

// ErrPermanent marks a failure that retrying will not fix (HTTP 400/401/403, an event the sink cannot
// render): the event goes to the dead letter.
var ErrPermanent = errors.New("permanent delivery failure")

// Permanent wraps err as a permanent failure.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }
