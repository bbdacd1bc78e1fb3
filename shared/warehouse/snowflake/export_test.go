package snowflake

// For the tests.
var (
	Position       = position
	Number         = number
	Plain          = plain
	AccountAndHost = accountAndHost
	MaxRetries     = &maxRetries
)
