package server

import (
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

func TestCheckpointsEndpoint(t *testing.T) {
	st := openStore(t)
	at := time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC)
	err := st.Update(func(tx *store.Tx) error {
		for _, c := range []struct{ instance, feed string }{{"default", "created"}, {"default", "updates"}, {"eu", "created"}} {
			cp := store.Checkpoint{Watermark: at, WindowAfter: at.Add(-time.Hour), Cursor: "opaque-" + c.instance, FirstStart: at.Add(-7 * 24 * time.Hour), UpdatedAt: at}
			if err := tx.PutCheckpoint(c.instance, c.feed, cp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Options{AuthToken: token, Store: st})
	for _, tc := range []struct {
		name, target, auth string
		wantCode           int
		want               string // instance/feed pairs in order
	}{
		{"all", "/v1/checkpoints", "Bearer " + token, 200, "default/created default/updates eu/created"},
		{"one instance", "/v1/checkpoints?instance=eu", "Bearer " + token, 200, "eu/created"},
		{"one feed", "/v1/checkpoints?feed=created", "Bearer " + token, 200, "default/created eu/created"},
		{"both", "/v1/checkpoints?instance=default&feed=updates", "Bearer " + token, 200, "default/updates"},
		{"none", "/v1/checkpoints?instance=nope", "Bearer " + token, 200, ""},
		{"bad feed", "/v1/checkpoints?feed=push", "Bearer " + token, 400, ""},
		{"no token", "/v1/checkpoints", "", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, s.Handler(), "GET", tc.target, tc.auth)
			if rec.Code != tc.wantCode {
				t.Fatalf("= %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if rec.Code != 200 {
				return
			}
			if strings.Contains(rec.Body.String(), "opaque-") {
				t.Errorf("the answer shows Wiz's cursor: %s", rec.Body)
			}
			var got []string
			for _, v := range decode[[]CheckpointView](t, rec) {
				got = append(got, v.Instance+"/"+v.Feed)
				if !v.Watermark.Equal(at) || !v.Cursor || !v.WindowAfter.Equal(at.Add(-time.Hour)) {
					t.Errorf("checkpoint %+v, want the stored watermark, window and mid_window", v)
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("checkpoints %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}
