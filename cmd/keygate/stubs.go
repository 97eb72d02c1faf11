package main

import (
	"context"
	"errors"
	"io"
)

func runSettings(context.Context, []string, io.Writer, io.Writer) error { return errors.New("not yet") }
func runSign(context.Context, []string, io.Writer, io.Writer) error     { return errors.New("not yet") }
func runVerify(context.Context, []string, io.Writer, io.Writer) error   { return errors.New("not yet") }
