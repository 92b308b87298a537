package web

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// printPDF prints an HTML document to A4 PDF with the machine's Chromium, headless, the
// document given as it is (no network: it holds its own style).
func printPDF(ctx context.Context, html string) ([]byte, error) {
	exe := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		return nil, errors.New("no Chromium on this machine")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(exe), chromedp.Headless,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true)}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses its sandbox to root; run the server as a user
	}
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		return nil, err
	}
	// The document holds text others wrote (names from threat-intelligence files): escaped,
	// and no script runs while it is printed.
	if _, err := chromedp.Call(bctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		return nil, err
	}
	tree, err := chromedp.Call(bctx, cdppage.GetFrameTree, cdp.Empty{})
	if err != nil {
		return nil, err
	}
	if _, err := chromedp.Call(bctx, cdppage.SetDocumentContent, cdppage.SetDocumentContentParams{FrameID: tree.FrameTree.Frame.ID, HTML: html}); err != nil {
		return nil, err
	}
	yes, top, side := true, 0.6, 0.5
	res, err := chromedp.Call(bctx, cdppage.PrintToPDF, cdppage.PrintToPDFParams{PrintBackground: &yes, PaperWidth: 8.27, PaperHeight: 11.69,
		MarginTop: &top, MarginBottom: &top, MarginLeft: &side, MarginRight: &side})
	if err != nil {
		return nil, err
	}
	return res.Data, nil
}
