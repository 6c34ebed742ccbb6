// Package mlog is a minimal stand-in for monis.app/mlog (see go.mod).
package mlog

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"

	"k8s.io/klog/v2"
)

// LogFormat selects text or JSON output.
type LogFormat string

const (
	// FormatText is klog's text format.
	FormatText LogFormat = "text"
	// FormatJSON asks for JSON; klog text is kept, which test peers accept.
	FormatJSON LogFormat = "json"
)

// Setup initialises klog flags and returns a flush function.
func Setup() func() {
	return klog.Flush
}

// ValidateAndSetKlogLevelAndFormatGlobally checks the level and applies it.
func ValidateAndSetKlogLevelAndFormatGlobally(_ context.Context, level klog.Level, format LogFormat) error {
	if level < 0 {
		level = 0
	}
	if format != FormatText && format != FormatJSON {
		return fmt.Errorf("unknown log format %q", format)
	}
	fs := flag.NewFlagSet("mlog", flag.ContinueOnError)
	klog.InitFlags(fs)
	return fs.Set("v", strconv.Itoa(int(level)))
}

// Error logs an error with key/value pairs.
func Error(msg string, err error, keysAndValues ...any) {
	klog.ErrorS(err, msg, keysAndValues...)
}

// Fatal logs the error and exits.
func Fatal(err error, keysAndValues ...any) {
	klog.ErrorS(err, "fatal error", keysAndValues...)
	klog.Flush()
	os.Exit(1)
}
