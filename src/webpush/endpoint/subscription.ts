/**
 * Does this endpoint still name a live subscription? autopush answers 410 errno 106 ("No such
 * subscription") both for a uaid it does not know and for a channel the uaid does not have
 * (autoendpoint extractors/subscription.rs and user.rs). A client connected here is authoritative for its
 * channels, so that case costs no storage read.
 */
import type { Store } from '../../store/index.js';
import type { ClientRegistry } from '../connection/clients.js';
import { ApiError, storageCall } from '../protocol/errors.js';

export async function checkSubscription(store: Store, clients: ClientRegistry, uaid: string, channelID: string): Promise<void> {
  const client = clients.get(uaid);
  if (client) {
    if (!client.channels.has(channelID)) throw new ApiError('invalidSubscription', 'No such subscription');
    return;
  }
  const [user, channel] = await storageCall(() => Promise.all([store.getUser(uaid), store.getChannel(uaid, channelID)]));
  if (!user || !channel) throw new ApiError('invalidSubscription', 'No such subscription');
}
