package deps

import (
	_ "github.com/google/uuid"
	_ "github.com/hasura/go-graphql-client"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/tidwall/gjson"
	_ "github.com/vektah/gqlparser/v2"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/oauth2/clientcredentials"
	_ "golang.org/x/time/rate"
	_ "gopkg.in/yaml.v3"
)
