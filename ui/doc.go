// Package ui holds takedown's HTTP doors: ui/api, the JSON API, and ui/web, the web pages.
// Both are thin adapters over internal/service, so a request gets the same authorization,
// validation and refusal audit whichever door it came through.
package ui
