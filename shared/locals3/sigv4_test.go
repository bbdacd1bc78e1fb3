package locals3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/unifiedprofiles/up/shared/objects"
)

// sdkClient is the real aws-sdk-go-v2 S3 client on the test endpoint with the given
// credentials (the server's own through srv.Client).
func (e *env) sdkClient(keyID, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     e.srv.cfg.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		BaseEndpoint:               aws.String(e.http.URL),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// put stores key through the signed client.
func (e *env) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := e.srv.Client(e.http.URL).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Every S3 operation the stack and a developer use works with the SDK signing as usual,
// including keys the canonical path and query must encode.
func TestSigV4SignedSDKRequestsWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	cl := e.srv.Client(e.http.URL)
	for _, key := range []string{testKey, "uploads/ws 1/a+b=c&d~é.csv", "uploads/ws_1/*(weird)!'.csv"} {
		t.Run(key, func(t *testing.T) {
			body := []byte("user_id\n" + key + "\n")
			if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: bytes.NewReader(body),
				Metadata: map[string]string{"upload": "up_1"}}); err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("GetObject: %v", err)
			}
			got, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if !bytes.Equal(got, body) {
				t.Errorf("GetObject read %q", got)
			}
			list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String(key)})
			if err != nil || len(list.Contents) != 1 {
				t.Fatalf("ListObjectsV2 with prefix: %v, %d objects", err, len(list.Contents))
			}
			if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)}); err != nil {
				t.Fatalf("DeleteObject: %v", err)
			}
			if _, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)}); err == nil {
				t.Error("HeadObject after the delete found the object")
			}
		})
	}
}

// An unsigned request, a wrong secret, an unknown key, a presigned URL, a stale date and a
// tampered request are all refused with 403, and change nothing.
func TestSigV4Refusals(t *testing.T) {
	t.Parallel()
	secret := []byte("user_id\nsecret-customer\n")
	objectPath := "/" + testBucket + "/" + testKey
	cases := []struct {
		name   string
		do     func(t *testing.T, e *env) (status int, code string)
		status int
		code   string
	}{
		{name: "unsigned list", status: 403, code: "AccessDenied",
			do: func(t *testing.T, e *env) (int, string) {
				return raw(t, e, http.MethodGet, "/"+testBucket+"?list-type=2", nil, nil)
			}},
		{name: "unsigned read", status: 403, code: "AccessDenied",
			do: func(t *testing.T, e *env) (int, string) { return raw(t, e, http.MethodGet, objectPath, nil, nil) }},
		{name: "unsigned delete", status: 403, code: "AccessDenied",
			do: func(t *testing.T, e *env) (int, string) { return raw(t, e, http.MethodDelete, objectPath, nil, nil) }},
		{name: "unsigned PUT over the upload", status: 403, code: "AccessDenied",
			do: func(t *testing.T, e *env) (int, string) {
				return raw(t, e, http.MethodPut, objectPath, []byte("user_id\nmallory\n"), nil)
			}},
		{name: "unsigned multi-object delete", status: 403, code: "AccessDenied",
			do: func(t *testing.T, e *env) (int, string) {
				return raw(t, e, http.MethodPost, "/"+testBucket+"?delete", []byte(`<Delete><Object><Key>`+testKey+`</Key></Object></Delete>`), nil)
			}},
		{name: "unsigned curl", status: 403, code: "AccessDenied",
			do: func(t *testing.T, e *env) (int, string) {
				if _, err := exec.LookPath("curl"); err != nil {
					t.Skip("SKIP: curl is not installed")
				}
				out, err := exec.Command("curl", "-s", "-w", "\n%{http_code}", e.http.URL+objectPath).Output()
				if err != nil {
					t.Fatal(err)
				}
				i := strings.LastIndexByte(string(out), '\n')
				status, _ := strconv.Atoi(string(out[i+1:]))
				return status, xmlCode(t, out[:i])
			}},
		{name: "SDK with a wrong secret", status: 403, code: "SignatureDoesNotMatch",
			do: func(t *testing.T, e *env) (int, string) {
				_, err := e.sdkClient("LOCALKEY", "not-the-secret").DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(testBucket), Key: aws.String(testKey)})
				return 403, apiCode(err)
			}},
		{name: "SDK with an unknown key", status: 403, code: "InvalidAccessKeyId",
			do: func(t *testing.T, e *env) (int, string) {
				_, err := e.sdkClient("OTHERKEY", "local-secret").GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(testKey)})
				return 403, apiCode(err)
			}},
		{name: "presigned GET URL", status: 403, code: "AccessDenied",
			do: func(t *testing.T, e *env) (int, string) {
				req, err := s3.NewPresignClient(e.srv.Client(e.http.URL)).PresignGetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(testKey)})
				if err != nil {
					t.Fatal(err)
				}
				resp, body := send(t, http.MethodGet, req.URL, nil, "", nil)
				return resp.StatusCode, xmlCode(t, body)
			}},
		{name: "signature from another region", status: 400, code: "AuthorizationHeaderMalformed",
			do: func(t *testing.T, e *env) (int, string) {
				return signedRaw(t, e, http.MethodGet, objectPath, nil, "us-west-2", time.Now(), nil)
			}},
		{name: "date 20 minutes old", status: 403, code: "RequestTimeTooSkewed",
			do: func(t *testing.T, e *env) (int, string) {
				return signedRaw(t, e, http.MethodGet, objectPath, nil, "", time.Now().Add(-20*time.Minute), nil)
			}},
		{name: "path changed after signing", status: 403, code: "SignatureDoesNotMatch",
			do: func(t *testing.T, e *env) (int, string) {
				return signedRaw(t, e, http.MethodGet, "/"+testBucket+"/uploads/ws_1/other.csv", nil, "", time.Now(), func(r *http.Request) {
					r.URL.Path, r.URL.RawPath = objectPath, ""
				})
			}},
		{name: "method changed after signing", status: 403, code: "SignatureDoesNotMatch",
			do: func(t *testing.T, e *env) (int, string) {
				return signedRaw(t, e, http.MethodGet, objectPath, nil, "", time.Now(), func(r *http.Request) { r.Method = http.MethodDelete })
			}},
		{name: "unsigned x-amz header added", status: 403, code: "AccessDenied",
			do: func(t *testing.T, e *env) (int, string) {
				return signedRaw(t, e, http.MethodPut, objectPath, []byte("user_id\nmallory\n"), "", time.Now(), func(r *http.Request) {
					r.Header.Set("X-Amz-Meta-Owner", "mallory")
				})
			}},
		{name: "body swapped after signing", status: 400, code: "XAmzContentSHA256Mismatch",
			do: func(t *testing.T, e *env) (int, string) {
				return signedRaw(t, e, http.MethodPut, objectPath, []byte("user_id\nhonest\n"), "", time.Now(), func(r *http.Request) {
					r.Body = io.NopCloser(strings.NewReader("user_id\nmalory\n")) // same length
				})
			}},
		{name: "signature version 2", status: 400, code: "InvalidRequest",
			do: func(t *testing.T, e *env) (int, string) {
				return raw(t, e, http.MethodGet, objectPath, nil, map[string]string{"Authorization": "AWS LOCALKEY:c2lnbmF0dXJl", "Date": time.Now().UTC().Format(http.TimeFormat)})
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.put(t, testKey, secret)
			status, code := c.do(t, e)
			if status != c.status || code != c.code {
				t.Errorf("status %d code %q, want %d %q", status, code, c.status, c.code)
			}
			// Nothing changed: the object is there, as it was, and it is the only one.
			got, err := e.readObject(t, testKey)
			if err != nil || !bytes.Equal(got, secret) {
				t.Errorf("after the refusal the object reads %q, %v", got, err)
			}
			list, err := e.srv.Client(e.http.URL).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(testBucket)})
			if err != nil || len(list.Contents) != 1 {
				t.Errorf("after the refusal: %v, %d objects", err, len(list.Contents))
			}
		})
	}
}

// raw sends a request as curl would, without a signature.
func raw(t *testing.T, e *env, method, path string, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	resp, b := send(t, method, e.http.URL+path, bytes.NewReader(body), "", hdr)
	return resp.StatusCode, xmlCode(t, b)
}

// signedRaw signs a request with the SDK's own SigV4 signer and the server's credentials
// (region "" is the server's), lets edit tamper with it, and sends it.
func signedRaw(t *testing.T, e *env, method, path string, body []byte, region string, at time.Time, edit func(*http.Request)) (int, string) {
	t.Helper()
	resp, b := signedResp(t, e, method, path, body, region, at, edit)
	return resp.StatusCode, xmlCode(t, b)
}

// signedResp is signedRaw's answer as it came.
func signedResp(t *testing.T, e *env, method, path string, body []byte, region string, at time.Time, edit func(*http.Request)) (*http.Response, []byte) {
	t.Helper()
	if region == "" {
		region = e.srv.cfg.Region
	}
	req, err := http.NewRequest(method, e.http.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: "LOCALKEY", SecretAccessKey: "local-secret"}
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(), creds, req, hash, "s3", region, at); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func xmlCode(t *testing.T, body []byte) string {
	t.Helper()
	var doc s3ErrorDoc
	if len(body) > 0 {
		if err := xml.Unmarshal(body, &doc); err != nil {
			t.Fatalf("error body %q: %v", body, err)
		}
	}
	return doc.Code
}

// The signer the SDK uses, applied to a raw request by hand, is accepted too: the check
// follows the specification, not one client's habits.
func TestSigV4RawSignedRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.put(t, testKey, testCSV)
	status, code := signedRaw(t, e, http.MethodGet, "/"+testBucket+"?list-type=2&prefix=uploads%2F&max-keys=5", nil, "", time.Now(), nil)
	if status != 200 || code != "" {
		t.Errorf("signed list: status %d code %q", status, code)
	}
	status, code = signedRaw(t, e, http.MethodPut, "/"+testBucket+"/uploads/ws_1/raw.csv", []byte("user_id\nu1\n"), "", time.Now(), nil)
	if status != 200 || code != "" {
		t.Errorf("signed PUT: status %d code %q", status, code)
	}
	if got, err := e.readObject(t, "uploads/ws_1/raw.csv"); err != nil || string(got) != "user_id\nu1\n" {
		t.Errorf("stored %q, %v", got, err)
	}
}

// A reader pinned to an ETag is never served another object: S3's If-Match, which gofakes3
// ignores, answered here, and the objects/s3 adapter's pinned Open on top of it.
func TestIfMatch(t *testing.T) {
	t.Parallel()
	first, second := []byte("user_id\nfirst\n"), []byte("user_id\nsecond\n")
	cases := []struct {
		name    string
		replace bool
		pin     objects.Pin
		want    []byte
		err     error
	}{
		{name: "pinned to the stored object", pin: objects.Pin{ETag: md5hex(first)}, want: first},
		{name: "quoted ETag", pin: objects.Pin{ETag: `"` + md5hex(first) + `"`}, want: first},
		{name: "replaced after the pin", replace: true, pin: objects.Pin{ETag: md5hex(first)}, err: objects.ErrChanged},
		{name: "unpinned reads the latest", replace: true, want: second},
		{name: "pinned to the replacement", replace: true, pin: objects.Pin{ETag: md5hex(second)}, want: second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.put(t, testKey, first)
			if c.replace {
				e.put(t, testKey, second)
			}
			rc, err := e.store.Open(context.Background(), testKey, c.pin)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Open: %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, c.want) {
				t.Errorf("read %q, want %q", got, c.want)
			}
		})
	}

	t.Run("HEAD and GET answer 412 without the body", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.put(t, testKey, first)
		cl := e.srv.Client(e.http.URL)
		_, err := cl.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(testKey), IfMatch: aws.String(`"` + md5hex(second) + `"`)})
		var status interface{ HTTPStatusCode() int }
		if !errors.As(err, &status) || status.HTTPStatusCode() != http.StatusPreconditionFailed {
			t.Errorf("HEAD with another ETag: %v", err)
		}
		_, err = cl.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(testKey), IfMatch: aws.String(`"` + md5hex(second) + `"`)})
		if apiCode(err) != "PreconditionFailed" {
			t.Errorf("GET with another ETag: %v", err)
		}
	})
}
