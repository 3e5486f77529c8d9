package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// Simulator credentials (its defaults; not secrets).
const (
	simClientID     = "wizsim-client"
	simClientSecret = "wizsim-secret"
	simAudience     = "wiz-api"
)

// baselineRequestTimeout bounds one request of the bare client.
const baselineRequestTimeout = 2 * time.Minute

// gqlRequest is a GraphQL POST body.
type gqlRequest struct {
	Query         string         `json:"query"`
	Variables     map[string]any `json:"variables"`
	OperationName string         `json:"operationName"`
}

// envelope is all the baseline decodes of a page: nodes stay raw and are discarded.
type envelope struct {
	Data *struct {
		Issues *struct {
			Nodes    []json.RawMessage `json:"nodes"`
			PageInfo struct {
				HasNextPage bool   `json:"hasNextPage"`
				EndCursor   string `json:"endCursor"`
			} `json:"pageInfo"`
		} `json:"issues"`
	} `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
}

// baseline pulls every issue created after `after` with the pipeline's query, filter, order and
// page size, as fast as a bare net/http client can at requestsPerSecond (paced as wizfetch's client
// paces itself, wiz.NewLimiter; 0 = unpaced), and returns the node count and wall time (token
// included).
func baseline(ctx context.Context, baseURL string, after time.Time, pageSize int, requestsPerSecond float64) (int, time.Duration, error) {
	client := &http.Client{
		Timeout:   baselineRequestTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true},
	}
	defer client.CloseIdleConnections()

	pacer := wiz.NewLimiter(requestsPerSecond) // unlimited when 0
	start := time.Now()
	token, err := fetchToken(ctx, client, baseURL+"/oauth/token")
	if err != nil {
		return 0, 0, err
	}
	// The same variables the created feed sends on a first run (see pkg/feed): every status, so
	// every issue is emitted, createdAt after the lookback start, CREATED_AT ascending.
	filter := wiz.IssueFilter{Status: config.IssueStatuses(), CreatedAfter: &after}.Wire()
	order := &wiz.IssueOrder{Field: "CREATED_AT", Direction: "ASC"}
	var cursor *string
	n := 0
	for page := 1; ; page++ {
		body, err := json.Marshal(gqlRequest{
			Query:         wiz.IssuesQuery,
			Variables:     map[string]any{"filterBy": filter, "first": pageSize, "after": cursor, "orderBy": order},
			OperationName: "IssuesTable",
		})
		if err != nil {
			return 0, 0, fmt.Errorf("encode page %d request: %w", page, err)
		}
		if err := pacer.Wait(ctx); err != nil {
			return 0, 0, fmt.Errorf("page %d: wait for the pacer: %w", page, err)
		}
		env, err := postPage(ctx, client, baseURL+"/graphql", token, body)
		if err != nil {
			return 0, 0, fmt.Errorf("page %d: %w", page, err)
		}
		issues := env.Data.Issues
		for _, node := range issues.Nodes {
			if !bytes.Equal(node, []byte("null")) {
				n++
			}
		}
		if !issues.PageInfo.HasNextPage {
			return n, time.Since(start), nil
		}
		if issues.PageInfo.EndCursor == "" {
			return 0, 0, fmt.Errorf("page %d: hasNextPage is true but endCursor is empty", page)
		}
		c := issues.PageInfo.EndCursor
		cursor = &c
	}
}

// fetchToken gets an access token with the client-credentials grant (credentials in the body).
func fetchToken(ctx context.Context, client *http.Client, tokenURL string) (string, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"audience":      {simAudience},
		"client_id":     {simClientID},
		"client_secret": {simClientSecret},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return "", fmt.Errorf("token request: HTTP %d", resp.StatusCode)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return "", fmt.Errorf("decode token response: %w", err)
	}
	if tok.AccessToken == "" {
		return "", errors.New("token response has no access_token")
	}
	return tok.AccessToken, nil
}

// postPage posts one issues query and decodes its envelope.
func postPage(ctx context.Context, client *http.Client, graphqlURL, token string, body []byte) (*envelope, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, graphqlURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	// Read the body to its end so that the connection is reused (as wizfetch's own transport does).
	_, _ = io.Copy(io.Discard, resp.Body)
	if len(env.Errors) > 0 {
		return nil, fmt.Errorf("GraphQL error %s: %s", env.Errors[0].Extensions.Code, env.Errors[0].Message)
	}
	if env.Data == nil || env.Data.Issues == nil {
		return nil, errors.New("response has no data.issues")
	}
	return &env, nil
}
