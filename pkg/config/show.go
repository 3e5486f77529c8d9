package config

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// ShowYAML renders the effective typed config as YAML with the file's snake_case keys: secrets as
// "***" ("" when unset), durations in their friendly form ("7d", "5m"), and the normalised
// instances list. It is what `config show` prints.
func (c *Config) ShowYAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return buf.Bytes(), nil
}

// Instance returns the instance with the given name (a pointer into c.Instances).
func (c *Config) Instance(name string) (*Instance, bool) {
	for i := range c.Instances {
		if c.Instances[i].Name == name {
			return &c.Instances[i], true
		}
	}
	return nil, false
}
