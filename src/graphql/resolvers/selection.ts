import type { FieldNode, FragmentDefinitionNode, GraphQLResolveInfo, SelectionSetNode } from 'graphql';

/**
 * The names of the subfields the field being resolved selects: directly, in inline fragments and
 * through named fragments. `@skip`/`@include` are not evaluated: a field they leave out still
 * counts, so a caller may fetch a little more than needed, never less. Cached per field node (a
 * parsed document is reused across requests through Yoga's parser cache), so the same field of
 * the same document always gets the same set object.
 */
export function selectedSubfields(info: GraphQLResolveInfo): ReadonlySet<string> {
  const node = info.fieldNodes[0];
  if (!node || info.fieldNodes.length !== 1) return namesSelectedBy(info);
  let names = cache.get(node);
  if (!names) cache.set(node, (names = namesSelectedBy(info)));
  return names;
}

/** True when the field being resolved selects `name` among its own subfields (see {@link selectedSubfields}). */
export function selectsSubfield(info: GraphQLResolveInfo, name: string): boolean {
  return selectedSubfields(info).has(name);
}

const cache = new WeakMap<FieldNode, ReadonlySet<string>>();

function namesSelectedBy(info: GraphQLResolveInfo): ReadonlySet<string> {
  const names = new Set<string>();
  for (const node of info.fieldNodes) {
    if (node.selectionSet) collect(node.selectionSet, info.fragments, new Set(), names);
  }
  return names;
}

function collect(
  selectionSet: SelectionSetNode,
  fragments: Record<string, FragmentDefinitionNode>,
  spread: Set<string>,
  names: Set<string>,
): void {
  for (const selection of selectionSet.selections) {
    if (selection.kind === 'Field') {
      names.add(selection.name.value);
    } else if (selection.kind === 'InlineFragment') {
      collect(selection.selectionSet, fragments, spread, names);
    } else {
      const fragment = fragments[selection.name.value];
      if (fragment && !spread.has(fragment.name.value)) {
        spread.add(fragment.name.value);
        collect(fragment.selectionSet, fragments, spread, names);
      }
    }
  }
}
