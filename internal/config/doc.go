// Package config reads fraises.yaml: it finds the file, expands ${VAR}
// references in scalar values, decodes it strictly and validates it,
// reporting every problem at once with its file:line:col.
package config
