// A mutation's name as the board says it in the activity log and the history panel.

const NAMES: Record<string, string> = {
  create: "Created",
  updateState: "Updated",
  navigateToStage: "Moved stage",
  saveBuyerPersona: "Saved the buyer persona",
  saveHeroContext: "Saved the hero concept",
  createOutline: "Changed the outline",
  updateSlide: "Edited a slide",
  navigateToSlide: "Opened a slide",
  importFromSupabase: "Imported",
  restoreRevision: "Restored a revision",
};

export function describe(mutation: string | null | undefined): string {
  return mutation ? NAMES[mutation] ?? mutation : "Changed";
}
