package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"

	"github.com/nicholas-fedor/shoutrrr/pkg/services/chat/telegram"
)

// telegramMessage is the body of Telegram's sendMessage.
type telegramMessage struct {
	ChatID    string `json:"chat_id"`
	Text      string `json:"text"`
	ParseMode string `json:"parse_mode"`
	Silent    bool   `json:"disable_notification"`
}

// sendTelegram posts sendMessage to each chat of a telegram:// target, and
// fails unless Telegram answers {"ok":true}.
func sendTelegram(ctx context.Context, cfg *telegram.Config, title, text string) error {
	for _, chat := range cfg.Chats {
		body, _ := json.Marshal(telegramMessage{ChatID: chat, ParseMode: "HTML", Silent: !cfg.Notification,
			Text: "<b>" + html.EscapeString(title) + "</b>\n" + html.EscapeString(text)})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.telegram.org/bot"+cfg.Token+"/sendMessage", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("telegram: build the request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("telegram: post: %w", withoutURL(err))
		}
		var ans struct {
			OK          bool   `json:"ok"`
			Description string `json:"description"`
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := json.Unmarshal(raw, &ans); err != nil || !ans.OK {
			return fmt.Errorf("telegram answered %s: %s", resp.Status, strings.TrimSpace(ans.Description))
		}
	}
	return nil
}
