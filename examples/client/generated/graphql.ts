/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** The values of a new item. */
export type CreateItemInput = {
  /** The category to file the item under; omitted or null for none. */
  categoryId?: string | number | null | undefined;
  /** A label; the empty string when omitted. */
  label?: string | null | undefined;
  /** The item's number. */
  number: number;
};

export type ItemNumbersQueryVariables = Exact<{ [key: string]: never; }>;


export type ItemNumbersQuery = { items: Array<{ number: number }> };

export type CategoriesWithItemsQueryVariables = Exact<{
  first: number;
  itemsPerCategory: number;
}>;


export type CategoriesWithItemsQuery = { categories: Array<{ id: string, name: string, itemCount: number, items: Array<{ id: string, number: number, label: string }> }> };

export type CreateItemMutationVariables = Exact<{
  input: CreateItemInput;
}>;


export type CreateItemMutation = { createItem: { id: string, number: number, label: string, category: { name: string } | null } };

export type ItemCreatedSubscriptionVariables = Exact<{ [key: string]: never; }>;


export type ItemCreatedSubscription = { itemCreated: { id: string, number: number, label: string, category: { name: string } | null } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}

export const ItemNumbersDocument = new TypedDocumentString(`
    query ItemNumbers {
  items {
    number
  }
}
    `, {"hash":"sha256:41ef56cd606f123043c6855f0e12630cf5993a99960e77c50445a5235c1abbb7"}) as unknown as TypedDocumentString<ItemNumbersQuery, ItemNumbersQueryVariables>;
export const CategoriesWithItemsDocument = new TypedDocumentString(`
    query CategoriesWithItems($first: Int!, $itemsPerCategory: Int!) {
  categories(first: $first) {
    id
    name
    itemCount
    items(first: $itemsPerCategory) {
      id
      number
      label
    }
  }
}
    `, {"hash":"sha256:7b79b60007409fb672ca77d0e295246de02d8a4bcd173723eec3c2b193ad2ab3"}) as unknown as TypedDocumentString<CategoriesWithItemsQuery, CategoriesWithItemsQueryVariables>;
export const CreateItemDocument = new TypedDocumentString(`
    mutation CreateItem($input: CreateItemInput!) {
  createItem(input: $input) {
    id
    number
    label
    category {
      name
    }
  }
}
    `, {"hash":"sha256:9ecaed456a3759ee15ad8b68e001a85ab97af77772ddbc89648f52b16f7a35b0"}) as unknown as TypedDocumentString<CreateItemMutation, CreateItemMutationVariables>;
export const ItemCreatedDocument = new TypedDocumentString(`
    subscription ItemCreated {
  itemCreated {
    id
    number
    label
    category {
      name
    }
  }
}
    `, {"hash":"sha256:6319e5c7962ab40fcd9e72278ba0449cff7b1704742bfbd50917d58fa4a4487f"}) as unknown as TypedDocumentString<ItemCreatedSubscription, ItemCreatedSubscriptionVariables>;