package localstack

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/unifiedprofiles/up/shared/store/dynamo"
)

// DynamoDB puts a local stack's data in a DynamoDB table instead of the bbolt file: the
// store the functions use in AWS, on moto_server or on AWS itself.
type DynamoDB struct {
	// Endpoint is the DynamoDB endpoint, such as http://127.0.0.1:5000 (moto_server) or
	// https://dynamodb.eu-west-1.amazonaws.com. Empty: the stack uses bbolt.
	Endpoint string
	// Table is created (on-demand, TTL on) if it does not exist.
	Table string
}

// The region and credentials of an emulator on this machine when the environment configures
// none: moto accepts any.
const (
	emulatorRegion = "us-east-1"
	emulatorKey    = "localstack"
)

// openDynamo opens d's table, creating it if absent. The AWS configuration is the standard
// one (AWS_REGION, AWS_PROFILE, …; the SDK's own HTTP client, which honours AWS_CA_BUNDLE).
// An endpoint on a loopback address is an emulator: without configured credentials or
// region it gets dummy ones and us-east-1, so a fresh machine needs no AWS setup; and its
// requests are sent one at a time (dynamo.Serialized), since moto's conditional writes and
// transaction rollbacks are not atomic under concurrent requests. DynamoDB itself needs
// neither. An emulator elsewhere (another host, a container's name) is not serialised.
// The description names the table and endpoint, for the banner.
func openDynamo(d DynamoDB, now func() time.Time) (st *dynamo.Store, description string, err error) {
	if d.Table == "" {
		return nil, "", fmt.Errorf("DynamoDB at %s: no table named", d.Endpoint)
	}
	u, err := url.Parse(d.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", fmt.Errorf("DynamoDB endpoint %q: want an http:// or https:// URL", d.Endpoint)
	}
	local := loopback(u.Hostname())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var opts []func(*config.LoadOptions) error
	if local {
		// Instance-profile credentials have no business with an emulator, and probing for
		// them off EC2 costs time and a warning.
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("load the AWS configuration: %w", err)
	}
	if local {
		if cfg.Region == "" {
			cfg.Region = emulatorRegion
		}
		if cfg.Credentials == nil || func() error { _, err := cfg.Credentials.Retrieve(ctx); return err }() != nil {
			cfg.Credentials = credentials.NewStaticCredentialsProvider(emulatorKey, emulatorKey, "")
		}
	} else if cfg.Region == "" {
		return nil, "", fmt.Errorf("DynamoDB at %s: no AWS region configured (set AWS_REGION or a profile's region)", d.Endpoint)
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.Endpoint) })
	if err := dynamo.EnsureTable(ctx, client, d.Table); err != nil {
		return nil, "", fmt.Errorf("DynamoDB at %s: %w", d.Endpoint, err)
	}
	description = fmt.Sprintf("DynamoDB table %s at %s (%s)", d.Table, d.Endpoint, cfg.Region)
	var api dynamo.API = client
	if local {
		api = dynamo.Serialized(client)
		description += ", one request at a time (a local emulator)"
	}
	return dynamo.New(api, d.Table, dynamo.WithClock(now)), description, nil
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
