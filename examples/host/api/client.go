package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// Client talks to a host's API.
type Client struct {
	http  *http.Client
	base  string
	token string
	where string
}

// NewUnixClient returns a client of the API on the unix socket path.
func NewUnixClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{http: &http.Client{Transport: tr}, base: "http://sft", where: path}
}

// NewTCPClient returns a client of the API on a TCP address with a token.
func NewTCPClient(addr, token string) *Client {
	return &Client{http: &http.Client{Transport: &http.Transport{}}, base: "http://" + addr, token: token, where: addr}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// StatusError is an error answer of the API.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Code) }

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, c.where, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var eb ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = string(bytes.TrimSpace(b))
		}
		return nil, &StatusError{Code: resp.StatusCode, Msg: eb.Error}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.getJSON(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Action runs online, offline or clear on a group.
func (c *Client) Action(ctx context.Context, group, action string) (ActionResult, error) {
	var res ActionResult
	err := c.getJSON(ctx, http.MethodPost, "/v1/groups/"+url.PathEscape(group)+"/"+url.PathEscape(action), nil, &res)
	return res, err
}

// Move moves a group to node.
func (c *Client) Move(ctx context.Context, group, node string) (ActionResult, error) {
	var res ActionResult
	err := c.getJSON(ctx, http.MethodPost, "/v1/groups/"+url.PathEscape(group)+"/move", MoveRequest{Node: node}, &res)
	return res, err
}

// Events calls fn for each event: the recent history and, with follow,
// every following event until ctx ends, the node stops or fn returns an
// error.
func (c *Client) Events(ctx context.Context, follow bool, fn func(Event) error) error {
	path := "/v1/events"
	if follow {
		path += "?follow=1"
	}
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("bad event line %q: %w", sc.Text(), err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
