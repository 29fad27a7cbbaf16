/**
 * One recorded push as `GET /dashboard/api/messages` answers it: built by the server (outcomes.ts `toView`, with
 * its outcomes as the type parameter) and rendered by the page (app.ts). It lives in the page's folder because the
 * page's compilation (tsconfig.web.json) sees nothing outside it; the route's JSON schema (routes.ts `messageView`)
 * describes the same fields for the OpenAPI document.
 */
export interface MessageView<Outcome extends string = string> {
  id: string | null;
  received_at: string;
  ttl: number | null;
  topic: string | null;
  urgency: string | null;
  size: number;
  subscription: string | null;
  outcome: Outcome;
  status: number | null;
  errno: number | null;
  detail: string | null;
  delivered_at: string | null;
  latency_ms: number | null;
}
