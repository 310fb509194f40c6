import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import {
  type DocumentNode,
  type ExecutionArgs,
  getOperationAST,
  getVariableValues,
  type GraphQLError,
  type ValidationContext,
} from 'graphql';
import { type ComplexityEstimatorArgs, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import type { Plugin } from 'graphql-yoga';
import { ErrorCode, LimitExceededError, type LimitErrorCode } from '../../errors.js';
import { type Limits, pageSize } from '../../limits.js';

/**
 * Refuses operations over the {@link Limits} before they run, so a refused operation never takes
 * a database connection. A refusal is a {@link LimitExceededError} with one code per limit
 * (`MAX_DEPTH_EXCEEDED`, …) and a message with the limit and what was found.
 *
 * - tokens, depth, aliases, directives: graphql-armor's plugins, while the document is parsed
 *   (tokens) or validated. Their refusals are reported beside the document's other validation
 *   errors instead of aborting validation, so a client also learns about a misspelled field.
 * - cost: graphql-query-complexity, just before execution, because the estimate depends on the
 *   variables (graphql-yoga caches validation per document, so it cannot be a validation rule).
 *   graphql-armor's cost limit was not used: it counts only literal `first` values, unclamped,
 *   so it refused `items(first: 1000000)`, which the server clamps to 100, and let through
 *   `first: $n` and nested lists left at their default page size.
 * - body size: enforced by `useBodyLimit`; after its 413 this plugin closes the connection.
 */
export function useLimits(limits: Omit<Limits, 'maxBodyBytes'>): Plugin {
  const operationCost = costCachedWhenConstant();
  // graphql-armor's rules, made once. Its plugins (maxDepthPlugin, …) add the same rules from an
  // onValidate hook each, every request; one hook adding all three costs envelop two hook calls
  // less per request (useValidationCache still skips running them for a document validated
  // before; it compares these rule objects, so they must stay the same ones).
  const validationRules = [
    maxDepthRule({ n: limits.maxDepth, flattenFragments: true, ignoreIntrospection: true, ...refusingWith(ErrorCode.MaxDepthExceeded) }),
    maxAliasesRule({ n: limits.maxAliases, ...refusingWith(ErrorCode.MaxAliasesExceeded) }),
    maxDirectivesRule({ n: limits.maxDirectives, ...refusingWith(ErrorCode.MaxDirectivesExceeded) }),
  ];
  return {
    onPluginInit({ addPlugin }) {
      // `exposeLimits` (armor's default) keeps the limit and the count in the message: neither is
      // a secret, and a client cannot fix its query without them.
      addPlugin(maxTokensPlugin({ n: limits.maxTokens, ...refusingWith(ErrorCode.MaxTokensExceeded) }));
    },
    onValidate({ addValidationRule }) {
      for (const rule of validationRules) addValidationRule(rule);
    },
    onExecute({ args, setResultAndStopExecution }) {
      const cost = operationCost(args);
      if (cost > limits.maxCost) {
        const found = Number.isFinite(cost) ? `found ${cost}` : 'the operation is too large to estimate';
        const refusal = new LimitExceededError(`Query cost limit of ${limits.maxCost} exceeded, ${found}.`, ErrorCode.MaxCostExceeded);
        setResultAndStopExecution({ errors: [refusal] });
      }
    },
    onResponse({ response }) {
      // graphql-yoga answers 413 without reading the rest of the body (`maxBodyBytes`); close
      // the connection rather than keep it alive with unread bytes in it, as nginx does.
      if (response.status === 413) response.headers.set('connection', 'close');
    },
  };
}

/**
 * armor options that turn a rejection into a {@link LimitExceededError}: armor's own error has
 * no code and a misleading "Syntax Error:" prefix. Validation rules pass their context, and the
 * error is reported there; the token limit runs inside the parser and passes none, so the error
 * is thrown, which ends parsing at once. armor itself must not throw (`propagateOnRejection`),
 * or the first refusal would abort validation.
 */
function refusingWith(code: LimitErrorCode) {
  return {
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError): void => {
        const refusal = new LimitExceededError(error.message.replace(/^Syntax Error: /, ''), code);
        if (!context) throw refusal;
        context.reportError(refusal);
      },
    ],
  };
}

/**
 * {@link estimatedCost}, computed once per document and operation when the operation has no
 * variables (its cost cannot change), and on every execution otherwise: the estimate walks the
 * whole document, which a request that runs the same document again need not pay for.
 */
function costCachedWhenConstant(): (args: ExecutionArgs) => number {
  const costs = new WeakMap<DocumentNode, Map<string, number>>();
  return (args) => {
    const operation = getOperationAST(args.document, args.operationName);
    if (!operation || (operation.variableDefinitions?.length ?? 0) > 0) return estimatedCost(args);
    let byOperation = costs.get(args.document);
    if (!byOperation) costs.set(args.document, (byOperation = new Map()));
    const name = args.operationName ?? '';
    let cost = byOperation.get(name);
    if (cost === undefined) byOperation.set(name, (cost = estimatedCost(args)));
    return cost;
  };
}

/**
 * The estimated number of fields `args` resolves (see {@link Limits.maxCost}); 0 when its
 * variables do not fit the operation (execution refuses those with `BAD_USER_INPUT`), Infinity
 * when estimating it would take too long (graphql-query-complexity stops after 10,000 nodes,
 * which only a document that spreads fragments within fragments reaches in 5,000 tokens).
 */
function estimatedCost(args: ExecutionArgs): number {
  const operation = getOperationAST(args.document, args.operationName);
  const variables = getVariableValues(args.schema, operation?.variableDefinitions ?? [], args.variableValues ?? {});
  if (variables.errors) return 0;
  try {
    return getComplexity({
      schema: args.schema,
      query: args.document,
      variables: args.variableValues ?? {},
      operationName: args.operationName ?? undefined,
      estimators: [rowsEstimator, simpleEstimator({ defaultComplexity: 1 })],
    });
  } catch {
    return Infinity;
  }
}

/**
 * The cost of a list field: its rows times (1 + the cost of one row). Rows are `first` as the
 * resolvers clamp it (`pageSize`), or one per `_entities` representation; other fields fall
 * through to the next estimator (1 + their subfields).
 */
function rowsEstimator({ field, args, childComplexity }: ComplexityEstimatorArgs): number | void {
  let rows: number | undefined;
  if (field.args.some((argument) => argument.name === 'first')) {
    const first = args['first'] as number | null | undefined;
    rows = typeof first === 'number' && first < 0 ? 0 : pageSize(first);
  } else if (field.name === '_entities') {
    const representations: unknown = args['representations'];
    rows = Array.isArray(representations) ? representations.length : 1;
  }
  return rows === undefined ? undefined : rows * (1 + childComplexity);
}
