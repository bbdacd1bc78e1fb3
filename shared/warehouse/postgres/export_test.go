package postgres

// LastPart is lastPart, for the tests.
var LastPart = lastPart

// Supported is supported, for the tests.
var Supported = supported
