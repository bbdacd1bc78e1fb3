// Command local is the local stack: every function's handler in one process on an embedded
// store, no AWS account needed. `make run` starts it. With UP_DYNAMODB_ENDPOINT set it keeps
// its data in a DynamoDB table instead (UP_TABLE_NAME, created if absent), on moto_server
// or AWS.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/localstack"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/token"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "local stack:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := env("UP_ADDR", "127.0.0.1:8080")
	dataDir := env("UP_DATA_DIR", ".data")
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	opToken, err := operatorToken(dataDir)
	if err != nil {
		return err
	}
	rate, err := strconv.Atoi(env("UP_TRACKING_RATE_LIMIT", "0"))
	if err != nil || rate < 0 {
		return fmt.Errorf("UP_TRACKING_RATE_LIMIT must be a whole number of requests per second per workspace, not %q", os.Getenv("UP_TRACKING_RATE_LIMIT"))
	}
	backfillDelay, err := time.ParseDuration(env("UP_BACKFILL_DELAY", profile.DefaultBackfillDelay.String()))
	if err != nil || backfillDelay <= 0 {
		return fmt.Errorf("UP_BACKFILL_DELAY must be a positive Go duration such as 10s, not %q", os.Getenv("UP_BACKFILL_DELAY"))
	}
	ddb, err := dynamoFromEnv()
	if err != nil {
		return err
	}
	s3addr := env("UP_S3_ADDR", "127.0.0.1:9000")
	s3ln, err := net.Listen("tcp", s3addr)
	if err != nil {
		return fmt.Errorf("listen on %s for the S3 endpoint (set UP_S3_ADDR to use another address): %w", s3addr, err)
	}
	s3base := "http://" + s3ln.Addr().String()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set UP_ADDR to use another address): %w", addr, err)
	}
	base := "http://" + ln.Addr().String()
	// The console this stack serves is same-origin; UP_CONSOLE_ORIGIN adds others.
	origins := append([]string{base}, strings.Split(os.Getenv("UP_CONSOLE_ORIGIN"), ",")...)
	stack, err := localstack.Open(localstack.Config{
		DataDir: dataDir, DynamoDB: ddb, OperatorTokenHash: token.Hash(opToken), PublicURL: os.Getenv("UP_PUBLIC_URL"), Logger: log,
		ConsoleOrigins: origins,
		Tracking:       httpapi.TrackingOptions{RateLimit: rate}, S3URL: s3base, BackfillDelay: backfillDelay,
	})
	if err != nil {
		return err
	}
	defer stack.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{
		Handler:           stack.Handler,
		BaseContext:       func(net.Listener) context.Context { return ctx }, // Ctrl-C ends live tails too
		ReadHeaderTimeout: 10 * time.Second,
		// A request, headers and body, must arrive within this (the largest body, 1 MiB, takes
		// milliseconds locally): a client trickling a body would otherwise hold a connection
		// and a handler forever. A handler reading too slow a body gets
		// os.ErrDeadlineExceeded, which httpapi answers 408 body_timeout. net/http lifts the
		// deadline once the body has been read, so handlers may work on, and the debugger's
		// live tail (a GET) streams, for as long as they need.
		ReadTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute,
	}

	abs, _ := filepath.Abs(dataDir)
	fmt.Printf("Unified Profiles local stack\n  base URL:       %s\n  web console:    %s/ (open it in a browser)\n  health:         %s/health\n  S3 endpoint:    %s (CSV uploads, bucket %s)\n  store:          %s\n  data folder:    %s\n  operator token: %s\n",
		base, base, base, s3base, localstack.UploadsBucket, stack.Store, abs, opToken)
	fmt.Printf("Try: curl -s -X POST %s/v1/beta/accounts -H 'Authorization: Bearer %s' -d '{\"account_sid\":\"AC0123456789abcdef0123456789abcdef\"}'\n", base, opToken)

	s3srv := &http.Server{Handler: stack.S3Handler, ReadHeaderTimeout: 10 * time.Second, BaseContext: srv.BaseContext}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- s3srv.Serve(s3ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Println("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := errors.Join(srv.Shutdown(shutdown), s3srv.Shutdown(shutdown)); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// operatorToken returns UP_OPERATOR_TOKEN, or the token kept in the data folder, generating
// it on first start. The file is the developer's own (mode 0600); in AWS only its hash is deployed.
func operatorToken(dataDir string) (string, error) {
	if t := os.Getenv("UP_OPERATOR_TOKEN"); t != "" {
		return t, nil
	}
	path := filepath.Join(dataDir, "operator-token")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read operator token: %w", err)
	}
	t := token.New(token.OperatorPrefix)
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep operator token: %w", err)
	}
	return t, nil
}

// defaultTable is the table UP_DYNAMODB_ENDPOINT gets without UP_TABLE_NAME.
const defaultTable = "up-local"

// dynamoFromEnv reads UP_DYNAMODB_ENDPOINT and UP_TABLE_NAME. A table name without an
// endpoint is refused rather than ignored: bbolt would be used while the developer believes
// the data goes to that table.
func dynamoFromEnv() (localstack.DynamoDB, error) {
	endpoint, table := os.Getenv("UP_DYNAMODB_ENDPOINT"), os.Getenv("UP_TABLE_NAME")
	if endpoint == "" {
		if table != "" {
			return localstack.DynamoDB{}, fmt.Errorf("UP_TABLE_NAME is set (%q) but UP_DYNAMODB_ENDPOINT is not: set the endpoint too (moto_server's URL, or https://dynamodb.<region>.amazonaws.com), or unset UP_TABLE_NAME to use the bbolt file", table)
		}
		return localstack.DynamoDB{}, nil
	}
	if table == "" {
		table = defaultTable
	}
	return localstack.DynamoDB{Endpoint: endpoint, Table: table}, nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
