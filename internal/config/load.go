package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Options are what loading a configuration needs from the outside world.
// The zero value uses the process environment and file system.
type Options struct {
	// LookupEnv resolves ${VAR} references and $CREDENTIALS_DIRECTORY;
	// default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile reads the *_file secrets; default os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// Credentials is where a relative *_file name is read from when
	// $CREDENTIALS_DIRECTORY is not set, such as a command run by hand
	// beside a unit that loads its credentials from a directory.
	Credentials CredentialsDir
}

// CredentialsDir is a directory a unit loads with
// LoadCredential=Prefix:Dir: its file X reaches the unit as the
// credential Prefix_X.
type CredentialsDir struct {
	Dir, Prefix string
}

// path is where the credential named name lies outside the unit, or ""
// when name is not one of this directory's.
func (c CredentialsDir) path(name string) string {
	if c.Dir == "" {
		return ""
	}
	file, ok := strings.CutPrefix(name, c.Prefix+"_")
	if !ok || !filepath.IsLocal(file) {
		return ""
	}
	return filepath.Join(c.Dir, file)
}

func (o Options) withDefaults() Options {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	return o
}

// Load reads, expands, decodes, completes and validates the file at path.
// A file that cannot be read is an ordinary error; a file with problems
// gives an *Error listing all of them.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse is Load for a file already in memory; name is used in problem
// positions and as Config.Path.
func Parse(name string, data []byte, opts Options) (*Config, error) {
	opts = opts.withDefaults()
	ps := &problems{file: name}
	body, ok := parse(ps, data)
	if !ok {
		return nil, ps.err()
	}
	d := &decoder{
		ps: ps,
		expand: func(s string) (string, bool, *expandError) {
			return expandEnv(s, opts.LookupEnv)
		},
		aliases: map[*ast.AliasNode]ast.Node{},
		flat:    map[*ast.MappingNode][]entry{},
		fields:  map[reflect.Type][]fieldInfo{},
		present: map[string]presence{},
		budget:  nodeBudget,
	}
	d.collectAliases(body, map[string]ast.Node{})
	cfg := &Config{Path: name}
	if body == nil {
		d.decodeStructEntries(nil, position{1, 1}, reflect.ValueOf(cfg).Elem(), "")
	} else {
		d.decode(body, reflect.ValueOf(cfg).Elem(), "", nil)
	}
	if d.aborted {
		return nil, ps.err()
	}
	l := &loader{cfg: cfg, ps: ps, present: d.present, opts: opts}
	l.link()
	l.readSecretFiles()
	l.readNotifyFiles()
	l.applyDefaults()
	l.validate()
	if err := ps.err(); err != nil {
		return nil, err
	}
	cfg.Warnings = ps.sortedWarnings()
	return cfg, nil
}

// loader holds what the passes after decoding share: the configuration,
// where each key was written, and the problems found so far.
type loader struct {
	cfg     *Config
	ps      *problems
	present map[string]presence
	opts    Options
	// realAppPath is each environment's app_path with its symlinks
	// resolved (validateAppPaths), for validateRouting.
	realAppPath map[*Environment]string
}

// has reports whether the key at path was written with a value.
func (l *loader) has(path string) bool {
	_, ok := l.present[path]
	return ok
}

// at is the position to report a problem with path at: the value itself
// for a scalar, the key for a mapping or list, and the nearest written
// ancestor's key for a key that is missing.
func (l *loader) at(path string) position {
	for p := path; ; p = parentPath(p) {
		if pr, ok := l.present[p]; ok {
			if p == path && pr.scalar {
				return pr.val
			}
			return pr.key
		}
		if p == "" {
			return position{}
		}
	}
}

// warn records something that loads but deserves attention, at path.
func (l *loader) warn(path, msg, hint string) {
	l.ps.warn(l.at(path), path, msg, hint)
}

// report adds a problem unless the value at path (or above it) already
// failed to decode.
func (l *loader) report(path, msg, hint string) {
	if l.ps.covered(path) {
		return
	}
	l.ps.add(l.at(path), path, msg, hint)
}

// link sets the back-pointers and names the decoder cannot know.
func (l *loader) link() {
	for fname, f := range l.cfg.Fraises {
		if f == nil {
			continue
		}
		f.Name = fname
		f.Config = l.cfg
		for ename, e := range f.Environments {
			if e == nil {
				continue
			}
			e.Name = ename
			e.Fraise = f
			e.Code = e
		}
	}
}

// Find says which configuration file to use: the --config flag, then
// $FRAISIER_CONFIG, then ./fraises.yaml, then /etc/fraisier/fraises.yaml.
// A file named by the flag or the variable must exist: fraisier never falls
// back from a file the user asked for to another one.
func Find(flagValue string, lookupEnv func(string) (string, bool)) (string, error) {
	return find(flagValue, lookupEnv, "/etc/fraisier/fraises.yaml")
}

func find(flagValue string, lookupEnv func(string) (string, bool), systemPath string) (string, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if flagValue != "" {
		if err := isFile(flagValue); err != nil {
			return "", fmt.Errorf("configuration %s (from --config): %w", flagValue, err)
		}
		return flagValue, nil
	}
	if v, _ := lookupEnv("FRAISIER_CONFIG"); v != "" {
		if err := isFile(v); err != nil {
			return "", fmt.Errorf("configuration %s (from $FRAISIER_CONFIG): %w", v, err)
		}
		return v, nil
	}
	tried := []string{"--config (not given)", "$FRAISIER_CONFIG (not set)"}
	for _, p := range []string{"fraises.yaml", systemPath} {
		err := isFile(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("configuration %s: %w", p, err)
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("no configuration file found; tried %s", strings.Join(tried, ", "))
}

func isFile(p string) error {
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("does not exist: %w", fs.ErrNotExist)
	}
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return pe.Err // the caller names the file already
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory, not a file")
	}
	return nil
}
