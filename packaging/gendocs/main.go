package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/fraiseql/fraisier/internal/cli"
)

// Usage: gendocs -out DIR [-version V] [-date UNIX-SECONDS]. It writes
// DIR/man/fraisier*.1.gz and DIR/completions/{fraisier.bash,_fraisier,fraisier.fish}.
func main() {
	out := flag.String("out", "", "directory to write man/ and completions/ into")
	version := flag.String("version", "", "the version the man pages name")
	date := flag.Int64("date", 0, "the man pages' date, in seconds since 1970 (the commit's, for a reproducible package)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gendocs -out DIR [-version V] [-date UNIX-SECONDS]")
		os.Exit(2)
	}
	when := time.Unix(*date, 0).UTC()
	if *date == 0 {
		when = time.Now().UTC()
	}
	if err := generate(*out, *version, when); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func generate(out, version string, when time.Time) error {
	// The environment is empty on purpose: no flag default or help text may
	// depend on the machine that builds the package.
	env := cli.Env{Lookup: func(string) (string, bool) { return "", false }}
	root := cli.RootCommand(cli.Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}, env)
	if err := writeManPages(root, filepath.Join(out, "man"), version, when); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	if err := writeCompletions(root, filepath.Join(out, "completions")); err != nil {
		return fmt.Errorf("completions: %w", err)
	}
	return nil
}

// writeManPages writes one gzipped page per available command, named as
// man(1) looks them up: fraisier-config-validate.1.gz for `fraisier config
// validate`.
func writeManPages(root *cobra.Command, dir, version string, when time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	source := "fraisier"
	if version != "" {
		source += " " + version
	}
	var walk func(*cobra.Command) error
	walk = func(cmd *cobra.Command) error {
		if !cmd.IsAvailableCommand() && cmd != root || cmd.IsAdditionalHelpTopicCommand() {
			return nil
		}
		// The generated footer would carry the build's date and time.
		cmd.DisableAutoGenTag = true
		header := &doc.GenManHeader{Section: "1", Date: &when, Source: source, Manual: "fraisier manual"}
		var page bytes.Buffer
		if err := doc.GenMan(cmd, header, &page); err != nil {
			return fmt.Errorf("%s: %w", cmd.CommandPath(), err)
		}
		name := strings.ReplaceAll(cmd.CommandPath(), " ", "-") + ".1.gz"
		if err := writeGzip(filepath.Join(dir, name), page.Bytes()); err != nil {
			return err
		}
		for _, c := range cmd.Commands() {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}

// writeGzip writes data compressed at the best level with no name and no
// time in the header (as gzip -9n), so that the same input gives the same
// bytes.
func writeGzip(path string, data []byte) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return zw.Close()
}

// writeCompletions writes the scripts the shells load by the command's
// name; each asks `fraisier __complete` for the words at run time.
func writeCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	scripts := []struct {
		name string
		gen  func(io.Writer) error
	}{
		{"fraisier.bash", func(w io.Writer) error { return root.GenBashCompletionV2(w, true) }},
		{"_fraisier", root.GenZshCompletion},
		{"fraisier.fish", func(w io.Writer) error { return root.GenFishCompletion(w, true) }},
	}
	for _, s := range scripts {
		var buf bytes.Buffer
		if err := s.gen(&buf); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
