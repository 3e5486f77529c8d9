package wiz

import (
	"bytes"
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

func oldDecode(data []byte) (*Page, error) {
	var env struct {
		Issues *struct {
			Nodes    []json.RawMessage `json:"nodes"`
			PageInfo struct {
				HasNextPage bool    `json:"hasNextPage"`
				EndCursor   *string `json:"endCursor"`
			} `json:"pageInfo"`
		} `json:"issues"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, err
	}
	page := &Page{}
	for _, raw := range env.Issues.Nodes {
		if bytes.Equal(raw, []byte("null")) {
			continue
		}
		page.Issues = append(page.Issues, Issue{})
		if err := json.Unmarshal(raw, &page.Issues[len(page.Issues)-1]); err != nil {
			return nil, err
		}
		page.Raw = append(page.Raw, raw)
	}
	return page, nil
}

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZCompare(t *testing.T) {
	b := &testing.B{}
	_ = b
	sim := startSim(t, wizsim_opts())
	c := newTestClient(t, simOptions(sim))
	data, err := c.exec(context.Background(), "IssuesTable", IssuesQuery,
		issuesVariables(IssueFilter{}, &IssueOrder{Field: "CREATED_AT", Direction: "ASC"}, 500, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page bytes %d", len(data))
	for round := 0; round < 2; round++ {
		s := cpu()
		for i := 0; i < 50; i++ {
			oldDecode(data)
		}
		o := (cpu() - s) / 50
		s = cpu()
		for i := 0; i < 50; i++ {
			decodePage(data)
		}
		n := (cpu() - s) / 50
		s = cpu()
		for i := 0; i < 50; i++ {
			var v struct{ Data json.RawMessage }
			json.NewDecoder(bytes.NewReader(data)).Decode(&v)
		}
		l := (cpu() - s) / 50
		t.Logf("cpu/op old %v new %v; library-like envelope %v", o, n, l)
	}
}

func wizsim_opts() wizsim.Options { return wizsim.Options{Issues: 1000, Seed: 7} }
