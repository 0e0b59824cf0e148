// focus.js: keyboard focus that stays where the person is, for the page and <llama-story>.

/**
 * Focus stays where the person is: a button that just became disabled under the keyboard's
 * focus hands it to its partner (Generate and Step to Stop; Stop back to `back`, by default
 * the first start button that can be pressed).
 * @param {Element | null} focused what had the focus before the controls changed
 * @param {HTMLButtonElement[]} starts
 * @param {HTMLButtonElement} stopButton
 * @param {HTMLElement} [back] where Stop hands the focus back (chat: the message box)
 */
export function keepFocus(focused, starts, stopButton, back = starts.find((b) => !b.disabled && !b.hidden)) {
  if (starts.includes(focused) && focused.disabled && !stopButton.disabled) stopButton.focus();
  else if (focused === stopButton && stopButton.disabled) back?.focus();
}
