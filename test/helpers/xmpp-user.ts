import { client, type Client, xml } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { NS } from '../../src/xmpp/namespaces.js';

/**
 * A user of a real XMPP server under test (Prosody, ejabberd) as a Conversations-style client acts: it logs in,
 * registers its device with Pushgate by ad-hoc command (XEP-0050, the result form carrying jid, node and secret
 * as p2 returns them) and enables push on its own server with them (XEP-0357 §5).
 */
export async function loginUser(c2sPort: number, username: string, password: string): Promise<Client> {
  const c = client({ service: `xmpp://127.0.0.1:${c2sPort}`, domain: 'localhost', username, password, resource: 'test' });
  c.on('error', () => {});
  c.reconnect.stop();
  await c.start();
  await c.send(xml('presence'));
  return c;
}

/** The first value of a data form field (XEP-0004), or undefined. */
export const formField = (x: Element | undefined, name: string): string | undefined =>
  x
    ?.getChildren('field')
    .find((f) => f.attrs['var'] === name)
    ?.getChildText('value') ?? undefined;

/** Runs a register command on the push service in one step, with a submitted form. */
export async function registerDevice(
  c: Client,
  pushDomain: string,
  command: string,
  fields: Record<string, string>,
): Promise<{ jid: string; node: string; secret: string }> {
  const reply = await c.iqCaller.request(
    xml(
      'iq',
      { type: 'set', to: pushDomain },
      xml(
        'command',
        { xmlns: NS.commands, node: command, action: 'execute' },
        xml('x', { xmlns: NS.data, type: 'submit' }, ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v)))),
      ),
    ),
  );
  const x = reply.getChild('command', NS.commands)!.getChild('x', NS.data);
  return { jid: formField(x, 'jid')!, node: formField(x, 'node')!, secret: formField(x, 'secret')! };
}

/** Enables push on the user's own server for that node, with the secret in the publish-options form. */
export async function enablePush(c: Client, jid: string, node: string, secret: string): Promise<void> {
  await c.iqCaller.request(
    xml(
      'iq',
      { type: 'set' },
      xml(
        'enable',
        { xmlns: NS.push, jid, node },
        xml(
          'x',
          { xmlns: NS.data, type: 'submit' },
          xml('field', { var: 'FORM_TYPE' }, xml('value', {}, NS.publishOptions)),
          xml('field', { var: 'secret' }, xml('value', {}, secret)),
        ),
      ),
    ),
  );
}
