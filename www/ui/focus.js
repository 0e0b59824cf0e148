// focus.js: keyboard focus that stays where the person is, for the page and <llama-story>.

/**
 * Focus stays where the person is: a button that just became disabled under the keyboard's
 * focus hands it to its partner (Generate and Step to Stop, Stop back to the one that started).
 * @param {Element | null} focused what had the focus before the controls changed
 * @param {HTMLButtonElement[]} starts
 * @param {HTMLButtonElement} stopButton
 */
export function keepFocus(focused, starts, stopButton) {
  if (starts.includes(focused) && focused.disabled && !stopButton.disabled) stopButton.focus();
  else if (focused === stopButton && stopButton.disabled) starts.find((b) => !b.disabled && !b.hidden)?.focus();
}
