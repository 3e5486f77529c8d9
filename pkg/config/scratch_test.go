package config

import (
	"os"
	"testing"
)

func TestScratch(t *testing.T) {
	for _, f := range []string{"/tmp/t.yaml", "/tmp/t2.yaml"} {
		c, w, err := Load(f)
		t.Logf("warnings: %v\nerr: %v", w, err)
		if c != nil {
			b, _ := c.ShowYAML()
			t.Logf("%s", b)
		}
	}
	_ = os.Stdout
}
