package config

import "testing"

func TestScratch(t *testing.T) {
	clearEnv(t)
	_, w, err := Load("/tmp/uncommented.yaml")
	t.Logf("%v %v", w, err)
}
