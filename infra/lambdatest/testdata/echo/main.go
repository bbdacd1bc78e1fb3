// Command echo is a throwaway Lambda used only to prove the lambdatest
// harness: it answers every API Gateway v2 request with what it received.
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

func main() {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"method":        r.Method,
			"path":          r.URL.Path,
			"body":          string(body),
			"authorization": r.Header.Get("Authorization"),
			// Proves the harness hands environment variables to the function.
			"env": os.Getenv("ECHO_ENV"),
		})
	})
	lambda.Start(httpadapter.NewV2(echo).ProxyWithContext)
}
