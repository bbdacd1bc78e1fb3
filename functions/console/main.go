// Command console serves the web console (shared/console: the page at / and its files under
// /console/) as an AWS Lambda behind the same API Gateway HTTP API as the API it calls, so the
// console is same-origin with it and needs no CORS. It only wires.
package main

import (
	"github.com/unifiedprofiles/up/shared/console"
	"github.com/unifiedprofiles/up/shared/lambdahttp"
)

func main() {
	lambdahttp.ServeStateless("console", console.Mount)
}
