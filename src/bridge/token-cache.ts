/**
 * An OAuth2 access token kept until shortly before it expires (FCM's service-account token, ADM's
 * client-credentials token). Concurrent callers share one refresh.
 */
export interface FreshToken {
  value: string;
  /** Seconds the provider says the token lives. */
  expiresIn: number;
}

/** Refresh this long before expiry, so a request never leaves with a token about to lapse. */
const MARGIN_MS = 60_000;

export class TokenCache {
  private token: { value: string; expires: number } | null = null;
  private refreshing: Promise<string> | null = null;

  constructor(private readonly fetchToken: () => Promise<FreshToken>) {}

  get(): Promise<string> {
    if (this.token && this.token.expires - MARGIN_MS > Date.now()) return Promise.resolve(this.token.value);
    this.refreshing ??= this.fetchToken()
      .then((t) => {
        this.token = { value: t.value, expires: Date.now() + t.expiresIn * 1000 };
        return t.value;
      })
      .finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  /** The provider refused the token early: the next get() fetches a new one. */
  invalidate(): void {
    this.token = null;
  }
}
