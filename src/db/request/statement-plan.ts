import {
  type DocumentNode,
  type FragmentDefinitionNode,
  getNamedType,
  getOperationAST,
  type GraphQLSchema,
  isObjectType,
  Kind,
  type SelectionSetNode,
  type GraphQLNamedType,
} from 'graphql';

/**
 * How the fields of `schema.graphql` reach the database, for counting an operation's statements
 * before it runs:
 * - `root`: one statement each time the field appears (root fields: they run once);
 * - a loader's name: one statement per tick for all its keys, however often the field appears.
 * A field missing here that has a resolver of its own (a host's `extend` fields, `_entities`) is
 * assumed to run several; a field without a resolver reads its parent's row and runs none.
 */
const SQL_FIELDS: Readonly<Record<string, 'root' | string>> = {
  'Query.items': 'root',
  'Query.categories': 'root',
  'Query.item': 'itemById',
  'Query.category': 'categoryById',
  'Item.category': 'categoryById',
  'Category.itemCount': 'itemCountByCategory',
  'Category.items': 'itemsByCategory',
  'Mutation.createItem': 'root',
  'Mutation.updateItem': 'root',
  'Mutation.deleteItem': 'root',
};

/** Fields with a resolver that never runs SQL. */
const NO_SQL_FIELDS = new Set(['Item.createdAt', 'Item.ownerId', 'Query._service']);

/**
 * Fields that run no SQL of their own below this parent: `Query.categories` counts the items in
 * its own statement when `itemCount` is selected (src/graphql/resolvers/query.ts).
 */
const FREE_BELOW: Readonly<Record<string, ReadonlySet<string>>> = {
  'Query.categories': new Set(['Category.itemCount']),
};

/**
 * True when the operation (`operationName` of `document`) can run at most ONE SQL statement, so
 * it needs no transaction to keep all its statements on one server connection behind a
 * transaction pooler. Errs on the side of "several": a field of unknown cost counts as two, a
 * field skipped by `@include`/`@skip` still counts, and a loader used at two depths counts once
 * only if nothing else runs SQL (then all its loads happen in the same tick). Cached per document.
 */
export function runsAtMostOneStatement(schema: GraphQLSchema, document: DocumentNode, operationName?: string | null): boolean {
  let byName = cache.get(document);
  if (!byName) cache.set(document, (byName = new Map()));
  const key = operationName ?? '';
  let answer = byName.get(key);
  if (answer === undefined) {
    answer = countStatements(schema, document, operationName) <= 1;
    byName.set(key, answer);
  }
  return answer;
}

const cache = new WeakMap<DocumentNode, Map<string, boolean>>();

function countStatements(schema: GraphQLSchema, document: DocumentNode, operationName?: string | null): number {
  const operation = getOperationAST(document, operationName);
  if (!operation) return 2;
  const root = schema.getRootType(operation.operation);
  if (!root) return 2;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  let statements = 0;
  const loaders = new Set<string>();

  const visit = (type: GraphQLNamedType, selectionSet: SelectionSetNode, spread: Set<string>, parent: string): void => {
    for (const selection of selectionSet.selections) {
      if (statements > 1) return;
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : type;
        if (condition) visit(condition, selection.selectionSet, spread, parent);
      } else if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (!fragment || spread.has(fragment.name.value)) continue;
        const condition = schema.getType(fragment.typeCondition.name.value);
        if (condition) visit(condition, fragment.selectionSet, new Set([...spread, fragment.name.value]), parent);
      } else {
        const name = selection.name.value;
        if (name.startsWith('__')) continue;
        if (!isObjectType(type)) {
          statements += 2;
          continue;
        }
        const field = type.getFields()[name];
        if (!field) continue;
        const coordinate = `${type.name}.${name}`;
        const source = FREE_BELOW[parent]?.has(coordinate) ? undefined : SQL_FIELDS[coordinate];
        if (source === 'root') statements += 1;
        else if (source !== undefined) loaders.add(source);
        else if (field.resolve && !NO_SQL_FIELDS.has(coordinate) && !FREE_BELOW[parent]?.has(coordinate)) statements += 2;
        if (selection.selectionSet) visit(getNamedType(field.type), selection.selectionSet, spread, coordinate);
      }
    }
  };
  visit(root, operation.selectionSet, new Set(), '');
  return statements + loaders.size;
}
