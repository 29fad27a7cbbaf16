import xml, { type Element } from '@xmpp/xml';
import { NS } from './namespaces.js';

/**
 * XEP-0004 data forms: read any form's fields by `var` (whatever its type or field order) and build the
 * forms the component sends.
 */

export interface Form {
  type: string;
  formType: string | null;
  fields: Map<string, string[]>;
}

export function readForm(x: Element | undefined): Form | null {
  if (!x || !x.is('x', NS.data)) return null;
  const fields = new Map<string, string[]>();
  for (const field of x.getChildren('field')) {
    const name = field.attrs['var'];
    if (!name) continue;
    fields.set(
      name,
      field.getChildren('value').map((v) => v.text()),
    );
  }
  const formType = fields.get('FORM_TYPE')?.[0] ?? null;
  return { type: x.attrs['type'] ?? 'form', formType, fields };
}

/** The first value of a field, trimmed; undefined when absent or empty. */
export function value(form: Form | null, name: string): string | undefined {
  const v = form?.fields.get(name)?.[0]?.trim();
  return v ? v : undefined;
}

/** XEP-0004 booleans are "1"/"true" or "0"/"false". */
export function booleanValue(form: Form | null, name: string): boolean {
  const v = value(form, name);
  return v === '1' || v === 'true';
}

export interface FieldSpec {
  var: string;
  type: 'text-single' | 'boolean' | 'list-single' | 'hidden' | 'jid-single' | 'text-private';
  label?: string;
  required?: boolean;
  options?: string[];
  value?: string;
}

export function buildForm(type: 'form' | 'result', title: string | null, fields: FieldSpec[]): Element {
  return xml(
    'x',
    { xmlns: NS.data, type },
    title ? xml('title', {}, title) : null,
    ...fields.map((f) =>
      xml(
        'field',
        { var: f.var, type: f.type, label: f.label },
        f.required ? xml('required') : null,
        ...(f.options ?? []).map((o) => xml('option', { label: o }, xml('value', {}, o))),
        f.value !== undefined ? xml('value', {}, f.value) : null,
      ),
    ),
  );
}
