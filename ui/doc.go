// Package ui will hold the web UI (templ components, handlers, sessions, CSRF, ja/en) through
// which the Commission reviews and votes. Until it lands, every action is available through
// the JSON API (internal/api) and the takedown CLI.
package ui
