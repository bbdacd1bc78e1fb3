package warehouse

// HasDriver reports whether this deployment can connect to warehouses of type typ: the
// setup function and the local stack carry the Postgres driver only, the sync worker all
// of them. Without one, a connection is saved but cannot be tested here (step 4 says so
// instead of failing the source).
func (s *Service) HasDriver(typ string) bool { return s.openers[typ] != nil }
