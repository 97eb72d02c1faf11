package main

import "github.com/keygate/keygate/keys"

func formatLimit(l keys.Limit) string { return "" }
