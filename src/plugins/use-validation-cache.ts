import { type DocumentNode, GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Validates each document once: its validation errors (none, for a valid one) are kept for the
 * document object, which graphql-yoga's parse cache hands out again for the same text, and a
 * later request with it skips validation. A document dropped from the parse cache is dropped
 * from here with it (a `WeakMap`).
 *
 * graphql-yoga's own validation cache (turned off in `createServer` with
 * `parserAndValidationCache: { validationCache: false }`; its parse cache stays on) does the same
 * but keys each result by the schema and by the names of the validation rules, which it joins
 * into a string on every request: 2.7 % of the server's time on `{ items { number } }` in a CPU
 * profile. A poolgraph server has one schema and adds the same rules to every validation (the
 * specified rules and `useLimits`'), so the document alone is key enough.
 */
export function useValidationCache(): Plugin {
  const results = new WeakMap<DocumentNode, readonly GraphQLError[]>();
  return {
    onValidate({ params: { documentAST }, setResult }) {
      const known = results.get(documentAST);
      if (known) {
        setResult(known);
        return undefined;
      }
      return ({ result }) => {
        // graphql-js's rules report GraphQLErrors only; anything else is not kept.
        if (result.every((error): error is GraphQLError => error instanceof GraphQLError)) results.set(documentAST, result);
      };
    },
  };
}
