package cli

import "testing"

func TestExtraProc(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		noSetter bool
		want     int // GOMAXPROCS afterwards, from 2
	}{
		{name: "one more P than the default", want: 3},
		{name: "GOMAXPROCS set by the operator wins", env: map[string]string{"GOMAXPROCS": "2"}, want: 2},
		{name: "no setter (tests share the process)", noSetter: true, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			procs := 2
			env := &Env{Getenv: func(k string) string { return tt.env[k] }}
			if !tt.noSetter {
				env.MaxProcs = func(n int) int {
					prev := procs
					if n > 0 {
						procs = n
					}
					return prev
				}
			}
			extraProc(env)
			if procs != tt.want {
				t.Fatalf("GOMAXPROCS = %d, want %d", procs, tt.want)
			}
		})
	}
}
