package rest

import (
	"errors"
	"testing"
)

func TestOAuthAppFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, err := fromLookup(env(map[string]string{EnvClientID: "id"})); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("without a secret: %v", err)
	}
	if _, err := fromLookup(env(map[string]string{EnvClientSecret: "s"})); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("without an id: %v", err)
	}
	if _, err := fromLookup(env(map[string]string{EnvClientID: "id", EnvClientSecret: "s", EnvLoginURL: "http://login.example.com"})); err == nil {
		t.Fatal("a plain-http login host that is not loopback was accepted")
	}
	app, err := fromLookup(env(map[string]string{EnvClientID: "id", EnvClientSecret: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if app.Login("production") != ProductionLoginURL || app.Login("sandbox") != SandboxLoginURL || app.Login("") != ProductionLoginURL {
		t.Fatalf("login hosts: %s %s", app.Login("production"), app.Login("sandbox"))
	}
	app, _ = fromLookup(env(map[string]string{EnvClientID: "id", EnvClientSecret: "s", EnvLoginURL: "https://acme.my.salesforce.com/"}))
	if app.Login("production") != "https://acme.my.salesforce.com" || app.Login("sandbox") != "https://acme.my.salesforce.com" {
		t.Fatalf("override: %s %s", app.Login("production"), app.Login("sandbox"))
	}
}
