// Unit tests of XEP-0004 data form reading and building (src/xmpp/forms.ts), on stanzas built in memory.
import xml from '@xmpp/xml';
import { describe, expect, it } from 'vitest';
import { booleanValue, buildForm, readForm, value } from '../../src/xmpp/forms.js';
import { NS } from '../../src/xmpp/namespaces.js';

const field = (name: string | undefined, ...values: string[]) =>
  xml('field', name === undefined ? {} : { var: name }, ...values.map((v) => xml('value', {}, v)));

describe('readForm', () => {
  it('reads fields by var, whatever their order, with the FORM_TYPE', () => {
    const form = readForm(xml('x', { xmlns: NS.data, type: 'submit' }, field('b', ' two '), field('FORM_TYPE', NS.pushSummary), field('a', '1', '2')));
    expect(form?.type).toBe('submit');
    expect(form?.formType).toBe(NS.pushSummary);
    expect(form?.fields.get('a')).toEqual(['1', '2']);
    expect(value(form, 'b')).toBe('two');
  });

  it('defaults the type to form, skips fields without var and has no FORM_TYPE when absent', () => {
    const form = readForm(xml('x', { xmlns: NS.data }, field(undefined, 'lost'), field('a')));
    expect(form).toEqual({ type: 'form', formType: null, fields: new Map([['a', []]]) });
  });

  it('is null for anything but a jabber:x:data x', () => {
    expect(readForm(undefined)).toBeNull();
    expect(readForm(xml('x', { xmlns: 'jabber:x:oob' }))).toBeNull();
    expect(readForm(xml('form', { xmlns: NS.data }))).toBeNull();
  });
});

describe('value and booleanValue', () => {
  const form = readForm(xml('x', { xmlns: NS.data }, field('empty', '  '), field('t', 'true'), field('one', '1'), field('f', '0')));
  it('treats empty and missing values alike', () => {
    expect(value(form, 'empty')).toBeUndefined();
    expect(value(form, 'missing')).toBeUndefined();
    expect(value(null, 'anything')).toBeUndefined();
  });
  it('reads XEP-0004 booleans', () => {
    expect(booleanValue(form, 't')).toBe(true);
    expect(booleanValue(form, 'one')).toBe(true);
    expect(booleanValue(form, 'f')).toBe(false);
    expect(booleanValue(form, 'missing')).toBe(false);
  });
});

describe('buildForm', () => {
  it('builds a form that readForm reads back', () => {
    const x = buildForm('form', 'Register', [
      { var: 'FORM_TYPE', type: 'hidden', value: NS.push },
      { var: 'kind', type: 'list-single', label: 'Kind', required: true, options: ['fcm', 'apns'] },
      { var: 'token', type: 'text-single' },
    ]);
    expect(x.getChildText('title')).toBe('Register');
    const kind = x.getChildren('field').find((f) => f.attrs['var'] === 'kind')!;
    expect(kind.getChild('required')).toBeDefined();
    expect(kind.getChildren('option').map((o) => o.getChildText('value'))).toEqual(['fcm', 'apns']);
    const back = readForm(x);
    expect(back?.formType).toBe(NS.push);
    expect(back?.fields.get('token')).toEqual([]);
  });
  it('leaves out the title when there is none', () => {
    expect(buildForm('result', null, []).getChild('title')).toBeUndefined();
  });
});
