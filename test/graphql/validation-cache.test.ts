import { buildSchema, type DocumentNode, type GraphQLSchema, NoUnusedFragmentsRule, parse, specifiedRules, validate, type ValidationRule } from 'graphql';
import { envelop, type Plugin } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { useValidationCache } from '../../src/graphql/plugins/use-validation-cache.js';

const schema = buildSchema(/* GraphQL */ `
  type Query {
    items: [Int!]!
  }
`);

/** envelop with the cache and a validation function that counts its runs (graphql-js's own). */
function validatorWithCache() {
  const documents: DocumentNode[] = [];
  const counting: Plugin = {
    onValidate({ setValidationFn }) {
      setValidationFn((...args: Parameters<typeof validate>) => {
        documents.push(args[1]);
        return validate(...args);
      });
    },
  };
  const getEnveloped = envelop({ plugins: [counting, useValidationCache()] });
  return {
    validate: (document: DocumentNode, rules?: ValidationRule[], against: GraphQLSchema = schema) =>
      getEnveloped().validate(against, document, rules),
    runs: documents,
  };
}

describe('validation runs once per document', () => {
  it('a document sent again is not validated again, and gets the same answer', () => {
    const validator = validatorWithCache();
    const valid = parse('{ items }');
    expect(validator.validate(valid)).toEqual([]);
    expect(validator.validate(valid)).toEqual([]);
    expect(validator.validate(valid)).toEqual([]);
    expect(validator.runs).toEqual([valid]);
  });

  it('an invalid document keeps its errors, without being validated again', () => {
    const validator = validatorWithCache();
    const invalid = parse('{ items { nope } }');
    const first = validator.validate(invalid);
    expect(first.map((error: Error) => error.message)).toEqual(['Field "items" must not have a selection since type "[Int!]!" has no subfields.']);
    expect(validator.validate(invalid)).toBe(first);
    expect(validator.runs).toEqual([invalid]);
  });

  it('another document (even with the same text, parsed again) is validated on its own', () => {
    const validator = validatorWithCache();
    validator.validate(parse('{ items }'));
    validator.validate(parse('{ items }'));
    validator.validate(parse('{ __typename }'));
    expect(validator.runs).toHaveLength(3);
  });

  it('a document validated under other rules, or against another schema, is validated again', () => {
    const validator = validatorWithCache();
    const document = parse('{ items }');
    validator.validate(document, [...specifiedRules]);
    validator.validate(document, [...specifiedRules]);
    expect(validator.runs).toHaveLength(1);
    validator.validate(document, [NoUnusedFragmentsRule]);
    expect(validator.runs).toHaveLength(2);
    validator.validate(document, [NoUnusedFragmentsRule], buildSchema('type Query { items: [Int!]! }'));
    expect(validator.runs).toHaveLength(3);
  });
});
