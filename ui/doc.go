// Package ui holds takedown's HTTP doors. ui/api is the JSON API; the web pages will sit
// beside it. Both are thin adapters over internal/service, so a request gets the same
// authorization, validation and refusal audit whichever door it came through.
package ui
