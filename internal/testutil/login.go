package testutil

import "github.com/otpgate/otpgate/internal/protocol"

// Login runs a login dialogue with the otpgated behind client, as the PAM
// module and otpgate-sshd do: login_start with req's user and context (an
// empty login object unless req has one), then code as the answer when the
// first step asks for one. It returns the last step. A first step with a
// verdict ends the login without an answer.
func Login(client *protocol.Client, req protocol.Request, code string) (*protocol.LoginStep, error) {
	req.Op = protocol.OpLoginStart
	if req.Login == nil {
		req.Login = &protocol.LoginStart{}
	}
	dlg, step, err := client.StartDialogue(&req)
	if err != nil {
		return nil, err
	}
	defer dlg.Close()
	if step.Verdict != "" {
		return step, nil
	}
	return dlg.Answer([]string{code})
}
