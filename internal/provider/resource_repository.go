package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/clusterguard/terraform-provider-clusterguard/internal/catalog"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/engine"
	"github.com/clusterguard/terraform-provider-clusterguard/internal/provider/validate"
)

var (
	_ resource.ResourceWithConfigure   = (*repositoryResource)(nil)
	_ resource.ResourceWithImportState = (*repositoryResource)(nil)
)

// NewRepositoryResource is the constructor the provider registers.
func NewRepositoryResource() resource.Resource { return &repositoryResource{} }

type repositoryResource struct {
	engine *engine.Engine
}

func (r *repositoryResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_repository"
}

func (r *repositoryResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A backup repository (E7, M4): deduplicated, compressed, encrypted point-in-time snapshots in " +
			"a directory (local or shared) or an S3-compatible bucket. Create attaches to the repository already at `url` " +
			"when `password` opens it; with `create = true` it initialises one when there is none (so a mistyped `url` never " +
			"silently becomes a new, empty repository). A repository the password does not open is refused. Agents write " +
			"to it directly. Destroy keeps the data unless `force_destroy = true`. No secret of this resource is stored " +
			"in Terraform state: `password`, `secret_access_key` and `session_token` are write-only.",
		Attributes: map[string]schema.Attribute{
			"id":   idAttribute("The repository name."),
			"name": catalogNameReplacing("Repository name, unique in the catalog. Agents open only the repositories their own config defines: every node's agent config needs a `repository \"<name>\"` block with this name, the same location and the password in a file. Changing it replaces the registration (not the data)."),
			"url": schema.StringAttribute{
				MarkdownDescription: "Where the repository lives: an absolute directory path reachable from every node (e.g. on the shared volume or an NFS mount), or `s3://bucket/prefix`.",
				Required:            true,
				Validators:          []validator.String{validate.RepositoryURL()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"endpoint": schema.StringAttribute{
				MarkdownDescription: "S3 endpoint (`host:port` or `https://host:port`); empty means AWS S3.",
				Optional:            true,
			},
			"region": schema.StringAttribute{
				MarkdownDescription: "S3 region.",
				Optional:            true,
			},
			"access_key_id": schema.StringAttribute{
				MarkdownDescription: "S3 access key id. Empty: the engine and agents use `AWS_ACCESS_KEY_ID` from their environment.",
				Optional:            true,
				Sensitive:           true,
			},
			"secret_access_key": schema.StringAttribute{
				MarkdownDescription: "S3 secret access key. Empty: `AWS_SECRET_ACCESS_KEY` from the environment. Write-only: it is " +
					"never stored in Terraform state. To apply a changed value, increase `credentials_version`.",
				Optional:  true,
				Sensitive: true,
				WriteOnly: true,
			},
			"session_token": schema.StringAttribute{
				MarkdownDescription: "S3 session token for temporary credentials. Write-only, like `secret_access_key`.",
				Optional:            true,
				Sensitive:           true,
				WriteOnly:           true,
			},
			"credentials_version": schema.Int64Attribute{
				MarkdownDescription: "Increase to apply a changed `secret_access_key` or `session_token` (Terraform cannot see " +
					"changes of a write-only value). Default 0.",
				Optional:   true,
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
			"create": schema.BoolAttribute{
				MarkdownDescription: "Initialise a new repository at `url` when there is none. Default `false`: attach only, and " +
					"fail with \"no repository at URL\" when there is none, so a mistyped `url` is an error rather than a new, " +
					"empty repository. With `true`, a repository already there that `password` opens is attached to.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"path_style": schema.BoolAttribute{
				MarkdownDescription: "Use path-style S3 requests (most self-hosted object stores need this). Default `false`.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
			},
			"insecure": schema.BoolAttribute{
				MarkdownDescription: "Use plain HTTP to the S3 endpoint. Default `false`.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
			},
			"password": schema.StringAttribute{
				MarkdownDescription: "Password that unlocks the repository's encryption key. Write-only: it is never stored in Terraform state. " +
					"To change it, set the new password and increase `password_version`: the key is re-wrapped, data is never re-encrypted. " +
					"At least 12 characters (checked at plan time).",
				Required:   true,
				Sensitive:  true,
				WriteOnly:  true,
				Validators: []validator.String{validate.RepositoryPassword()},
			},
			"password_version": schema.Int64Attribute{
				MarkdownDescription: "Increase to apply a changed `password` (Terraform cannot see changes of a write-only value). Default 0. " +
					"The key is re-wrapped and the old password stops opening the repository: write the new password into the `password_file` of this repository's block in every agent's config and restart every agent, or their backups and restores fail.",
				Optional:   true,
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
			"force_destroy": schema.BoolAttribute{
				MarkdownDescription: "On destroy, delete every object of the repository (all recovery points). Default `false`: destroy only unregisters it.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
			},
			"created": schema.BoolAttribute{
				MarkdownDescription: "Whether this resource initialised the repository (`false`: it attached to an existing one).",
				Computed:            true,
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"location": schema.StringAttribute{
				MarkdownDescription: "The repository location as the engine sees it (no secrets).",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

func (r *repositoryResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if data := providerDataFrom(req.ProviderData, &resp.Diagnostics); data != nil {
		r.engine = data.engine
	}
}

func (r *repositoryResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var plan, config repositoryResourceModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, 10*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	rec := plan.record(config)
	if _, err := r.engine.GetRepository(ctx, rec.Name); err == nil {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Repository Already Registered",
			detail(fmt.Sprintf("A repository named %q is already in the engine's catalog.", rec.Name),
				fmt.Sprintf("Import it instead (terraform import <address> %s), or choose another name.", rec.Name), nil))
		return
	} else if !isNotFound(err) {
		resp.Diagnostics.Append(diagCatalogError("looking up the repository", err))
		return
	}
	tflog.Info(ctx, "registering repository", map[string]any{"repository": rec.Name})
	register := r.engine.RegisterRepository
	if plan.Create.ValueBool() {
		register = r.engine.CreateRepository
	}
	info, err := register(ctx, rec)
	if err != nil {
		resp.Diagnostics.Append(diagRepository(rec.Name, "registering", err)...)
		return
	}
	plan.ID = types.StringValue(rec.Name)
	plan.Created = types.BoolValue(info.Created)
	plan.Location = types.StringValue(info.Location)
	plan.clearWriteOnly()
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *repositoryResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state repositoryResourceModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.ID.ValueString()
	if name == "" {
		name = state.Name.ValueString()
	}
	rec, err := r.engine.GetRepository(ctx, name)
	if isNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(diagCatalogError("reading the repository", err))
		return
	}
	state.ID = types.StringValue(rec.Name)
	state.Name = types.StringValue(rec.Name)
	state.URL = types.StringValue(rec.URL)
	state.Endpoint = optionalString(rec.Endpoint)
	state.Region = optionalString(rec.Region)
	state.AccessKeyID = optionalString(rec.AccessKeyID)
	state.PathStyle = types.BoolValue(rec.PathStyle)
	state.Insecure = types.BoolValue(rec.Insecure)
	if state.ForceDestroy.IsNull() {
		state.ForceDestroy = types.BoolValue(false)
	}
	if state.Location.IsNull() || state.Location.ValueString() == "" {
		state.Location = types.StringValue(rec.URL)
	}
	if state.Created.IsNull() {
		state.Created = types.BoolValue(false)
	}
	if state.Create.IsNull() {
		state.Create = types.BoolValue(false)
	}
	state.clearWriteOnly()
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *repositoryResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var plan, state, config repositoryResourceModelV0
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, 10*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	name := plan.Name.ValueString()
	// The write-only credentials come from the configuration (the plan
	// never holds them); the password is changed below, not here.
	access := config
	access.Password = types.StringNull()
	if err := r.engine.UpdateRepositoryAccess(ctx, plan.record(access)); err != nil {
		resp.Diagnostics.Append(diagRepository(name, "updating", err)...)
		return
	}
	if plan.PasswordVersion.ValueInt64() != state.PasswordVersion.ValueInt64() {
		tflog.Info(ctx, "re-wrapping repository key with the new password", map[string]any{"repository": name})
		if err := r.engine.ChangeRepositoryPassword(ctx, name, config.Password.ValueString()); err != nil {
			resp.Diagnostics.Append(diagRepository(name, "changing the password of", err)...)
			return
		}
	}
	plan.clearWriteOnly()
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *repositoryResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if r.engine == nil {
		resp.Diagnostics.Append(diagUnconfigured())
		return
	}
	var state repositoryResourceModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, 30*time.Minute)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := r.engine.UnregisterRepository(ctx, state.Name.ValueString(), state.ForceDestroy.ValueBool())
	if err != nil && !isNotFound(err) {
		resp.Diagnostics.Append(diagRepository(state.Name.ValueString(), "destroying", err)...)
	}
}

func (r *repositoryResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
}

type repositoryResourceModelV0 struct {
	ID              types.String   `tfsdk:"id"`
	Name            types.String   `tfsdk:"name"`
	URL             types.String   `tfsdk:"url"`
	Endpoint        types.String   `tfsdk:"endpoint"`
	Region          types.String   `tfsdk:"region"`
	AccessKeyID     types.String   `tfsdk:"access_key_id"`
	SecretAccessKey types.String   `tfsdk:"secret_access_key"`
	SessionToken    types.String   `tfsdk:"session_token"`
	PathStyle       types.Bool     `tfsdk:"path_style"`
	Insecure        types.Bool     `tfsdk:"insecure"`
	Password        types.String   `tfsdk:"password"`
	PasswordVersion types.Int64    `tfsdk:"password_version"`
	CredentialsVer  types.Int64    `tfsdk:"credentials_version"`
	Create          types.Bool     `tfsdk:"create"`
	ForceDestroy    types.Bool     `tfsdk:"force_destroy"`
	Created         types.Bool     `tfsdk:"created"`
	Location        types.String   `tfsdk:"location"`
	Timeouts        timeouts.Value `tfsdk:"timeouts"`
}

// record is the catalog entry for the planned m with the write-only
// secrets of config (the plan never holds them).
func (m repositoryResourceModelV0) record(config repositoryResourceModelV0) catalog.Repository {
	return catalog.Repository{
		Name: m.Name.ValueString(), URL: m.URL.ValueString(), Endpoint: m.Endpoint.ValueString(),
		Region: m.Region.ValueString(), AccessKeyID: m.AccessKeyID.ValueString(),
		SecretAccessKey: config.SecretAccessKey.ValueString(), SessionToken: config.SessionToken.ValueString(),
		PathStyle: m.PathStyle.ValueBool(), Insecure: m.Insecure.ValueBool(), Password: config.Password.ValueString(),
	}
}

// clearWriteOnly nulls the write-only attributes before m is saved as state.
func (m *repositoryResourceModelV0) clearWriteOnly() {
	m.Password = types.StringNull()
	m.SecretAccessKey = types.StringNull()
	m.SessionToken = types.StringNull()
}

func optionalString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}
