package postgres

// LastPart is lastPart, for the tests.
var LastPart = lastPart
