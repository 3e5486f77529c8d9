package config

import (
	"testing"
	"time"
)

func TestScratch(t *testing.T) {
	clearEnv(t)
	bombs := []string{
		"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
		"x: &r {incident_type: a, issue_type: [A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A,A]}\ny: &i {name: a, classify: {rules: [*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r,*r]}}\ninstances: [*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i,*i]\n",
	}
	for _, b := range bombs {
		start := time.Now()
		_, _, err := LoadBytes([]byte(b))
		s := err.Error()
		if len(s) > 300 {
			s = s[:300]
		}
		t.Logf("%v: %s", time.Since(start), s)
	}
}
