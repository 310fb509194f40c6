import type { FieldNode, FragmentDefinitionNode, GraphQLResolveInfo, SelectionSetNode } from 'graphql';

/**
 * True when the field being resolved selects `name` among its own subfields, directly, in an
 * inline fragment or through a named fragment. `@skip`/`@include` are not evaluated: a field they
 * leave out still counts, so a caller may fetch a little more than needed, never less.
 * Cached per field node: a parsed document is reused across requests (Yoga's parser cache).
 */
export function selectsSubfield(info: GraphQLResolveInfo, name: string): boolean {
  const node = info.fieldNodes[0];
  if (!node || info.fieldNodes.length !== 1) return anyNodeSelects(info, name);
  let byName = cache.get(node);
  if (!byName) cache.set(node, (byName = new Map()));
  let answer = byName.get(name);
  if (answer === undefined) {
    answer = anyNodeSelects(info, name);
    byName.set(name, answer);
  }
  return answer;
}

const cache = new WeakMap<FieldNode, Map<string, boolean>>();

function anyNodeSelects(info: GraphQLResolveInfo, name: string): boolean {
  return info.fieldNodes.some(
    (node) => node.selectionSet !== undefined && selects(node.selectionSet, name, info.fragments, new Set()),
  );
}

function selects(
  selectionSet: SelectionSetNode,
  name: string,
  fragments: Record<string, FragmentDefinitionNode>,
  spread: Set<string>,
): boolean {
  for (const selection of selectionSet.selections) {
    if (selection.kind === 'Field') {
      if (selection.name.value === name) return true;
    } else if (selection.kind === 'InlineFragment') {
      if (selects(selection.selectionSet, name, fragments, spread)) return true;
    } else {
      const fragment = fragments[selection.name.value];
      if (fragment && !spread.has(fragment.name.value)) {
        spread.add(fragment.name.value);
        if (selects(fragment.selectionSet, name, fragments, spread)) return true;
      }
    }
  }
  return false;
}
