package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (c *cli) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the enrolled device: id, user, server, pinned keys",
		Args:  args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev, path, err := c.loadDevice()
			if err != nil {
				return err
			}
			w := c.stdout
			fmt.Fprintf(w, "Device:      %s\n", dev.ID())
			fmt.Fprintf(w, "User:        %s\n", dev.User())
			fmt.Fprintf(w, "Server:      %s\n", dev.BaseURL())
			fmt.Fprintf(w, "Key:         %s\n", dev.Algorithm())
			fmt.Fprintf(w, "Enrolled:    %s\n", timeText(dev.EnrolledAt()))
			if provider, _ := dev.Push(); provider != "" {
				fmt.Fprintf(w, "Push:        %s\n", provider)
			} else {
				fmt.Fprintf(w, "Push:        none (long-poll only)\n")
			}
			if pin := dev.TLSPin(); pin != "" {
				fmt.Fprintf(w, "TLS pin:     %s\n", pin)
			} else {
				fmt.Fprintf(w, "TLS pin:     none\n")
			}
			fmt.Fprintf(w, "Push keys:\n")
			for _, tp := range dev.PushKeys() {
				how := "endorsed"
				if tp == dev.PinnedPushKey() {
					how = "pinned at enrollment"
				}
				fmt.Fprintf(w, "  %s  (%s)\n", tp, how)
			}
			fmt.Fprintf(w, "State file:  %s\n", path)
			return nil
		},
	}
}
