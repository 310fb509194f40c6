/**
 * Who made the request, as a verified token says. Made only by the token verifier, after the
 * token's signature, times, issuer and audience were checked; a request without a token has none.
 */
export interface Identity {
  /** The `sub` claim, if a string. */
  readonly subject: string | undefined;
  /** The `role` claim, if a string ('admin' may do anything). */
  readonly role: string | undefined;
  /**
   * The verified claims, as JSON text: what `set_config('request.jwt.claims', …, true)` receives.
   * Computed once per token (the verifier caches identities), not once per statement.
   */
  readonly claimsJson: string;
}
